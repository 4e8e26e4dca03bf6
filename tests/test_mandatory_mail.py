"""Budgets stop loops, not people: a busy customer gets every resolution and every question.

A customer opens ten tickets within the hour; an agent asks a question on each and resolves
each. The per-recipient budget (one mail at once, refilled within seconds here so the test
need not wait an hour) runs dry at once; the resolutions it holds back are deferred in the
outbox and delivered as it refills, each an event on its ticket and a line of the admin's report.
"""

from __future__ import annotations

import email
import email.policy
import uuid
from typing import Any

from tests import deskdaemon
from tests.harness import Daemon, Sink, make_mail, unique_address, wait_until

EVA = "eva@telenta.example"
ADMIN = "admin@telenta.example"
TICKETS = 10
CONFIG = deskdaemon.config(more="""\
    guard:
      per_recipient: {capacity: 1, per_hour: 3600}
    """)


desk = deskdaemon.desk_fixture("mandatory", CONFIG)
duties = deskdaemon.duties


def _tokens(desk: Daemon, sink: Sink, customer: str) -> dict[int, str]:
    """Each ticket of the customer, with the reply address Eva's notice about it gives her."""
    numbers = wait_until(lambda: [n for (n,) in desk.db.rows(
        "SELECT t.number FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE c.email = :e", e=customer)]
        if desk.db.scalar("SELECT count(*) FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE c.email = :e",
                          e=customer) == TICKETS else None, what="ten tickets")
    tokens = {}
    for number in numbers:
        notice = wait_until(lambda n=number: [m for m in sink.to(EVA) if f"[#{n}]" in str(m.message["Subject"])],
                            what=f"Eva's notice about {number}")[0]
        tokens[number] = str(notice.message["Reply-To"])
    return tokens


def _agent(desk: Daemon, token: str, body: str) -> None:
    desk.send(make_mail(sender=EVA, to=token, subject="Re: ärendet", body=body, name="Eva Lind",
                        message_id=f"<{uuid.uuid4().hex}@eva.example>"), sender=EVA, to=[token])


def _mails(sink: Sink, customer: str, word: str) -> set[str]:
    return {str(m.message["Subject"]) for m in sink.to(customer) if word in str(m.message["Subject"])}


def test_ten_tickets_in_an_hour_get_every_question_and_every_resolution(desk: Daemon, sink: Sink, duties: Any) -> None:
    customer = unique_address("busy")
    for index in range(TICKETS):
        desk.send(make_mail(sender=customer, subject=f"Brandlarm {index} tjuter"), sender=customer)
    tokens = _tokens(desk, sink, customer)
    for token in tokens.values():
        _agent(desk, token, "#waiting customer\nWhich room is the detector in?\n")
    wait_until(lambda: desk.db.scalar("SELECT count(*) FROM ticket WHERE status = 'waiting_customer' AND number IN "
                                      f"({','.join(map(str, tokens))})") == TICKETS, what="ten questions asked")
    for token in tokens.values():
        _agent(desk, token, "#resolve\n")
    wait_until(lambda: len(_mails(sink, customer, "more information")) == TICKETS, timeout=60,
               what="every information request")
    wait_until(lambda: len(_mails(sink, customer, "Resolved")) == TICKETS, timeout=60, what="every resolution")
    for number in tokens:
        assert any(f"[#{number}]" in subject for subject in _mails(sink, customer, "Resolved")), number
    deferred = desk.db.scalar("SELECT count(*) FROM ticketevent WHERE kind = 'mail_deferred' AND detail LIKE :c",
                              c=f"resolved to {customer}%")
    assert deferred >= TICKETS - 3, "the budget held most resolutions back, each an event on its ticket"
    assert desk.db.scalar("SELECT count(*) FROM outbox WHERE rcpt_to = :c AND state != 'sent'", c=customer) == 0
    reports = [m for m in sink.to(ADMIN) if customer in m.message.get_content()]
    assert reports, "the admin hears when the budget trips"
    # The sweep's report to the admin lists every deferred mail, once.
    duties.run()
    duties.run()
    listed = [line for kind, raw in desk.db.rows("SELECT kind, raw FROM outbox WHERE rcpt_to = :a", a=ADMIN)
              for line in email.message_from_bytes(raw, policy=email.policy.default).get_content().split("\n")
              if f"resolved to {customer} deferred" in line]
    assert len(listed) == deferred, listed
