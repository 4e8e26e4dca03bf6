"""Staff mail as people work: auto-generated notices, one mail per person per sweep with links,
`#close` as the notification matrix says, and Outlook's Thread-Index threading a bare reply.

Sweeps are driven with a controlled clock, as in the lifecycle tests; everything else goes
over SMTP to a daemon on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests import deskdaemon
from tests.harness import Daemon, Received, Sink, make_mail, unique_address, wait_until

EVA = "eva@telenta.example"
KARIN = "karin.brand@telenta.example"
LEAD = "lead@telenta.example"
CONFIG = deskdaemon.config(more=f"""\
    - {{name: Karin Brand, address: {KARIN}, departments: [fire-national], role: manager}}
    - {{name: Lena Lead, address: {LEAD}, role: lead}}
    guard:
      per_recipient: {{capacity: 2, per_hour: 3600}}
    """)


desk = deskdaemon.desk_fixture("staff", CONFIG)


duties = deskdaemon.duties


def _open(desk: Daemon, sink: Sink, customer: str, subject: str = "Brandlarmet tjuter") -> tuple[int, Received]:
    desk.send(make_mail(sender=customer, subject=subject, name="Anna Kund"), sender=customer)
    confirmation = sink.wait_for(customer)[0]
    return int(re.search(r"\[#(\d+)\]", str(confirmation.message["Subject"])).group(1)), confirmation  # type: ignore[union-attr]


def _outbox(desk: Daemon, to: str) -> list[tuple[str, str]]:
    """(kind, text) of every mail queued to `to`."""
    return [(kind, email.message_from_bytes(raw, policy=email.policy.default).get_content())
            for kind, raw in desk.db.rows("SELECT kind, raw FROM outbox WHERE rcpt_to = :t ORDER BY id", t=to)]


def test_staff_notices_are_auto_generated_answers_to_customers_auto_replied(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("auto")
    number, confirmation = _open(desk, sink, customer)
    notice = wait_until(lambda: [m for m in sink.to(EVA) if f"[#{number}]" in str(m.message["Subject"])],
                        what="Eva's notice")[0]
    assert notice.message["Auto-Submitted"] == "auto-generated"
    assert confirmation.message["Auto-Submitted"] == "auto-replied", "the confirmation answers the customer's mail"


def test_one_sweep_sends_each_person_one_mail_listing_their_tickets(desk: Daemon, sink: Sink, duties: Any) -> None:
    numbers = [_open(desk, sink, unique_address("sweep"), f"Brandlarmet tjuter {i}")[0] for i in range(4)]
    created = desk.db.scalar("SELECT max(created_at) FROM ticket")
    created = datetime.fromisoformat(created) if isinstance(created, str) else created
    before = len(_outbox(desk, KARIN))
    duties.run((created if created.tzinfo else created.replace(tzinfo=UTC)) + timedelta(minutes=45))
    sent = _outbox(desk, KARIN)[before:]
    assert len(sent) == 1, [kind for kind, _ in sent]
    kind, text = sent[0]
    assert kind == "staff:sweep"
    for number in numbers:
        assert f"SLA breached [#{number}]" in text, text
        assert f"http://desk.example/tickets/{number}" in text, "each ticket with its link"


def test_daily_digest_has_links(desk: Daemon, sink: Sink, duties: Any) -> None:
    number, _ = _open(desk, sink, unique_address("digest"))
    duties.run(datetime.now(UTC).replace(hour=23, minute=59, second=30) + timedelta(days=1))
    digest = [text for kind, text in _outbox(desk, LEAD) if kind == "staff:Daily digest"]
    assert digest and f"http://desk.example/tickets/{number}" in digest[-1], digest


def _agent(desk: Daemon, token: str, body: str) -> None:
    desk.send(make_mail(sender=EVA, to=token, subject="Re: ärendet", body=body, name="Eva Lind",
                        message_id=f"<{uuid.uuid4().hex}@eva.example>"), sender=EVA, to=[token])


def test_close_by_mail_sends_what_the_matrix_says(desk: Daemon, sink: Sink) -> None:
    """`closed: {customer: optout}`: a customer who did not opt out hears of it, after a busy day."""
    customer = unique_address("close")
    number, _ = _open(desk, sink, customer)
    token = str(wait_until(lambda: [m for m in sink.to(EVA) if f"[#{number}]" in str(m.message["Subject"])],
                           what="Eva's notice")[0].message["Reply-To"])
    for step, status in [("#take", "in_progress"), ("#waiting third-party", "waiting_third_party"),
                         ("#status in_progress", "in_progress"), ("#resolve", "resolved"), ("#close", "closed")]:
        _agent(desk, token, step + "\n")
        wait_until(lambda s=status: desk.db.scalar("SELECT status FROM ticket WHERE number = :n", n=number) == s,
                   what=step)
    closed = wait_until(lambda: [m for m in sink.to(customer) if "Closed" in str(m.message["Subject"])], timeout=30,
                        what="the closed mail")
    assert f"[#{number}]" in str(closed[0].message["Subject"])


def test_outlook_thread_index_threads_a_reply_with_no_other_reference(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("outlook")
    number, confirmation = _open(desk, sink, customer)
    ours = str(confirmation.message["Thread-Index"])
    assert len(base64.b64decode(ours)) == 22
    # Outlook's reply: our Thread-Index plus five bytes, a subject without the tag, no references.
    theirs = base64.b64encode(base64.b64decode(ours) + os.urandom(5)).decode()
    reply = make_mail(sender=customer, subject="SV: Brandlarmet", body="Det tjuter igen i natt.\n",
                      headers={"Thread-Index": theirs, "Thread-Topic": "Brandlarmet"})
    desk.send(reply, sender=customer)
    stranger = unique_address("stranger")
    desk.send(make_mail(sender=stranger, subject="SV: Brandlarmet", body="Jag med.\n",
                        headers={"Thread-Index": theirs}), sender=stranger)
    wait_until(lambda: desk.db.scalar("SELECT count(*) FROM message WHERE author IN (:a, :b)", a=customer, b=stranger) == 3,
               what="both stored")
    rows = desk.db.rows("SELECT t.number, m.author, m.thread_by FROM message m JOIN ticket t ON t.id = m.ticket_id "
                        "WHERE m.author IN (:a, :b) ORDER BY m.id", a=customer, b=stranger)
    assert [(r.number, r.thread_by) for r in rows if r.author == customer][1] == (number, "thread-index")
    assert [r.number for r in rows if r.author == stranger] != [number], "a stranger's Thread-Index threads nothing"
