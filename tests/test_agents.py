"""Agents working tickets by mail, end to end over SMTP: the reply relayed to the customer, the
commands, a failed command, internal notes, a third party's round trip, tickets opened for a
customer (`#customer`, forwards) with DKIM and with our MTA's Authentication-Results, and forged
mail that must change nothing.

One daemon serves the module (SQLite); each test has its own customers and tickets.
"""

from __future__ import annotations

import email
import email.policy
import re
import textwrap
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.links.reply import reply_address, today
from tests.dkimkeys import Key, make_key, publish, sign
from tests.harness import Daemon, Database, Received, Sink, make_mail, unique_address, wait_until

EVA = "eva@telenta.example"
KARIN = "karin.brand@telenta.example"
ADMIN = "admin@telenta.example"
SECRET = "test-secret-shared-by-one-installation"  # what the harness gives every daemon
MTA = "mx.telenta.example"
CONFIG = """\
    tickets: {{language: en}}
    admin_address: {admin}
    agents:
      - {{name: Eva Lind, address: {eva}, departments: [fire-national], role: agent}}
      - {{name: Karin Brand, address: {karin}, departments: [fire-national], role: manager}}
      - {{name: Lena Lead, address: lead@telenta.example, role: lead}}
    agent_mail:
      dkim_dns_override: {dns}
      trusted_authserv_id: {mta}
      mta_hosts: [127.0.0.1]
    scheduler: {{enabled: false}}
    """


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {"good": make_key(), "other": make_key()}


@pytest.fixture(scope="module")
def config_file(keys: dict[str, Key], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("agents")
    dns = publish(folder / "dkim.yaml", {"mail._domainkey.telenta.example": keys["good"]})
    config = folder / "postdesk.yaml"
    config.write_text(textwrap.dedent(CONFIG.format(admin=ADMIN, eva=EVA, karin=KARIN, dns=dns, mta=MTA)))
    return config


def _daemon(db: Database, sink: Sink, config_file: Path, log: Path) -> Daemon:
    return Daemon(db, sink, log, env_extra={"POSTDESK_CONFIG": str(config_file)}).start()


@pytest.fixture(scope="module")
def desk(config_file: Path, sink: Sink) -> Iterator[Daemon]:
    db = Database("sqlite", config_file.parent)
    proc = _daemon(db, sink, config_file, config_file.parent / "daemon.log")
    yield proc
    proc.stop()
    db.drop()


# -- helpers ---------------------------------------------------------------------------------

def _open(desk: Daemon, sink: Sink, customer: str, subject: str = "Brandlarm tjuter i källaren") -> tuple[int, bytes]:
    raw = make_mail(sender=customer, subject=subject, body="Hej, brandlarmet tjuter hela tiden.\n", name="Anna Kund")
    desk.send(raw, sender=customer)
    found = re.search(r"\[#(\d+)\]", str(sink.wait_for(customer)[0].message["Subject"]))
    assert found
    return int(found.group(1)), raw


def _about(sink: Sink, to: str, number: int, count: int = 1, word: str = "") -> list[Received]:
    """Wait for `count` mails to `to` about ticket `number` (and with `word` in the subject)."""
    def found() -> list[Received]:
        return [m for m in sink.to(to) if f"[#{number}]" in str(m.message["Subject"]) and word in str(m.message["Subject"])]
    wait_until(lambda: len(found()) >= count, what=f"{count} mail(s) to {to} about {number} ({word})")
    return found()


def _reply_to(sink: Sink, number: int, agent: str = EVA) -> str:
    notice = _about(sink, agent, number)[-1].message
    return str(notice["Reply-To"])


def _agent_mail(desk: Daemon, to: str, body: str, *, sender: str = EVA, subject: str = "Re: ärendet",
                headers: dict[str, str] | None = None, key: Key | None = None, from_header: str = "") -> str:
    message_id = f"<{uuid.uuid4().hex}@eva-laptop.telenta.example>"
    raw = make_mail(sender=sender, to=to, subject=subject, body=body, message_id=message_id, name="Eva Lind",
                    headers=headers)
    if from_header:  # the From line as a mailer of its own wrote it
        raw = re.sub(rb"(?m)^From: .*\r\n", f"From: {from_header}\r\n".encode(), raw, count=1)
    if key is not None:
        raw = sign(raw, key, domain="telenta.example")
    desk.send(raw, sender=sender, to=[to])
    return message_id


def _wait_results(sink: Sink, number: int, count: int) -> list[Received]:
    def found() -> list[Received]:
        return [m for m in sink.to(EVA) if f"[#{number}]" in str(m.message["Subject"])
                and re.search(r"\] (Done|Not done):", str(m.message["Subject"]))]
    wait_until(lambda: len(found()) >= count, what=f"{count} command result(s) for {number}")
    return found()


def _ticket(desk: Daemon, number: int) -> Any:
    return desk.db.rows("SELECT status, assignee, priority, department FROM ticket WHERE number = :n", n=number)[0]


def _drained(desk: Daemon) -> None:
    """Every mail sent to the daemon so far has been processed (done or quarantined)."""
    wait_until(lambda: desk.db.scalar("SELECT count(*) FROM inbound WHERE state = 'queued'") == 0, what="queue drained")


def _queued_to(desk: Daemon, address: str) -> int:
    return desk.db.scalar("SELECT count(*) FROM outbox WHERE rcpt_to = :a", a=address)


SIGNED_OFF = """\
{text}

-- 
Eva Lind, Telenta Support
eva@telenta.example | +46 8 555 010 10

On Mon, 23 Nov 2026 at 10:02, Postdesk <support@telenta.example> wrote:
> Ticket {number} was given to you by eva@telenta.example.
> Hej, brandlarmet tjuter hela tiden.
"""


# -- replies ---------------------------------------------------------------------------------

def test_reply_is_relayed_from_our_mailbox_threaded_and_without_the_agents_address(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("relay")
    number, first = _open(desk, sink, customer)
    notice = _about(sink, EVA, number)[0]
    # The notice: signed Reply-To for Eva and this ticket, our Message-ID, history, threading root.
    token = str(notice.message["Reply-To"])
    assert re.fullmatch(rf"support\+t{number}\.a[0-9a-z]+\.[0-9a-f]{{12}}@telenta\.example", token)
    assert str(notice.message["Message-ID"]).endswith("@postdesk.telenta.example>")
    assert str(notice.message["References"]) == f"<ticket-{number}@postdesk.telenta.example>"
    assert "brandlarmet tjuter hela tiden" in notice.message.get_content()
    assert _reply_to(sink, number, KARIN) != token, "each agent's token is their own"

    _agent_mail(desk, token, SIGNED_OFF.format(text="Hej Anna! En tekniker kommer i morgon kl 9.", number=number),
                subject=str(notice.message["Subject"]))
    relayed = sink.wait_for(customer, 3)  # confirmation, "in progress", the reply
    reply = next(m for m in relayed if "En tekniker kommer" in m.message.get_content())
    assert str(reply.message["From"]) == "Eva Lind via Postdesk <support@telenta.example>"
    assert reply.mail_from == "support@telenta.example"
    assert f"[#{number}]" in str(reply.message["Subject"])
    customer_id = re.search(rb"Message-ID: (<[^>]+>)", first).group(1).decode()  # type: ignore[union-attr]
    assert customer_id in str(reply.message["References"])
    sent_to_customer = {str(m.message["Message-ID"]) for m in relayed}
    assert str(reply.message["In-Reply-To"]) in sent_to_customer | {customer_id}
    for mail in sink.to(customer):
        assert b"eva@telenta.example" not in mail.raw.lower() and b"eva-laptop" not in mail.raw
    body = reply.message.get_content()
    assert "+46 8 555" not in body and "wrote:" not in body, "signature and quote are stripped"
    row = _ticket(desk, number)
    assert (row.status, row.assignee) == ("in_progress", EVA), "the first reply takes a new ticket"

    # The customer answers the relayed reply: it threads, and Eva (the assignee) hears of it.
    answer = make_mail(sender=customer, subject=f"Re: {reply.message['Subject']}", body="Tack, det passar bra.\n",
                       headers={"In-Reply-To": str(reply.message["Message-ID"])})
    desk.send(answer, sender=customer)
    heard = _about(sink, EVA, number, word="Customer replied")[0].message
    assert "Tack, det passar bra." in heard.get_content() and str(heard["Reply-To"]) == token


def test_reply_with_a_bare_signature_still_hides_the_address(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("bare")
    number, _ = _open(desk, sink, customer)
    _agent_mail(desk, _reply_to(sink, number), "Vi har bytt detektorn.\nHälsningar Eva Lind, eva@telenta.example\n")
    reply = next(m for m in sink.wait_for(customer, 3) if "bytt detektorn" in m.message.get_content())
    assert b"eva@telenta.example" not in reply.raw.lower()


# -- commands --------------------------------------------------------------------------------

def test_each_command_by_mail(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("commands")
    number, _ = _open(desk, sink, customer)
    token = _reply_to(sink, number)
    steps: list[tuple[str, dict[str, str]]] = [
        ("#take", {"status": "in_progress", "assignee": EVA}),
        ("#priority urgent\n#department fire-stockholm", {"priority": "urgent", "department": "fire-stockholm"}),
        ("#waiting customer\nVilken centralapparat har ni?", {"status": "waiting_customer"}),
        ("#status in_progress", {"status": "in_progress"}),
        ("#waiting third-party", {"status": "waiting_third_party"}),
        ("#assign Karin Brand", {"assignee": KARIN}),
        ("#assign me\n#resolve", {"status": "resolved", "assignee": EVA}),
        ("#close", {"status": "closed"}),
    ]
    for index, (commands, expected) in enumerate(steps, start=1):
        _agent_mail(desk, token, commands + "\n")
        result = _wait_results(sink, number, index)[-1].message
        assert "] Done:" in str(result["Subject"]), result.get_content()
        row = _ticket(desk, number)._asdict()
        assert {k: row[k] for k in expected} == expected, commands
    question = [m for m in sink.to(customer) if "Vilken centralapparat har ni?" in m.message.get_content()]
    assert len(question) == 1, "the text under #waiting customer is the question to the customer"
    assert _about(sink, KARIN, number, word="Assigned to you"), "Karin heard she was given the ticket"
    events = {kind for (kind,) in desk.db.rows(
        "SELECT kind FROM ticketevent e JOIN ticket t ON t.id = e.ticket_id WHERE t.number = :n", n=number)}
    assert {"assigned", "priority", "department", "status"} <= events


def test_internal_note_is_kept_and_never_sent(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("note")
    number, _ = _open(desk, sink, customer)
    _agent_mail(desk, _reply_to(sink, number), "#note\nKunden verkar ha fel modell, kolla med lagret.\n")
    result = _wait_results(sink, number, 1)[0].message
    assert "internal note added" in result.get_content()
    note = desk.db.rows("SELECT m.visibility, m.author FROM message m JOIN ticket t ON t.id = m.ticket_id "
                        "WHERE t.number = :n AND m.kind = 'note'", n=number)
    assert [tuple(r) for r in note] == [("internal", EVA)]
    assert _queued_to(desk, customer) == 1, "only the confirmation"
    assert _ticket(desk, number).status == "new", "a note does not take the ticket"


def test_failed_command_applies_nothing_and_says_which_line(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("failed")
    number, _ = _open(desk, sink, customer)
    token = _reply_to(sink, number)
    before = _ticket(desk, number)
    _agent_mail(desk, token, "#priority low\n#assign nobody\nDet här svaret får inte gå ut.\n")
    error = _wait_results(sink, number, 1)[0].message
    assert "Not done" in str(error["Subject"])
    assert "line 2 (#assign nobody)" in error.get_content() and "no agent" in error.get_content()
    # A command that only fails when applied (#take ran, then new is not reachable): rolled back.
    _agent_mail(desk, token, "#take\n#status new\nInte heller detta.\n")
    error = _wait_results(sink, number, 2)[1].message
    assert "line 2 (#status new)" in error.get_content() and "cannot change ticket status" in error.get_content()
    assert _ticket(desk, number) == before and before.status == "new" and before.assignee is None
    assert desk.db.scalar("SELECT count(*) FROM ticketevent e JOIN ticket t ON t.id = e.ticket_id WHERE t.number = :n "
                          "AND e.kind IN ('assigned', 'priority', 'status', 'first_response')", n=number) == 0
    assert _queued_to(desk, customer) == 1, "neither reply went out"


# -- a third party -----------------------------------------------------------------------------

def test_third_party_question_and_answer_thread_back(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("third")
    supplier = unique_address("supplier").replace("kund.example", "lev.example")
    number, _ = _open(desk, sink, customer)
    _agent_mail(desk, _reply_to(sink, number), f"#cc Leverantören <{supplier}>\nHar ni detektor DX-9 i lager?\n")
    question = sink.wait_for(supplier)[0]
    assert "Har ni detektor DX-9 i lager?" in question.message.get_content()
    assert str(question.message["From"]) == "Eva Lind via Postdesk <support@telenta.example>"
    assert b"eva@telenta.example" not in question.raw.lower()
    assert _ticket(desk, number).status == "waiting_third_party"
    token = str(question.message["Reply-To"])
    assert f"+t{number}.p" in token
    answer = make_mail(sender=supplier, to=token, subject=f"Re: {question.message['Subject']}",
                       body="Ja, 40 st. Skickas i dag.\n\n> Har ni detektor DX-9 i lager?\n")
    desk.send(answer, sender=supplier, to=[token])
    told = _about(sink, EVA, number, word="Third party replied")[0].message
    assert "Ja, 40 st. Skickas i dag." in told.get_content()
    row = desk.db.rows("SELECT m.kind, m.visibility FROM message m JOIN ticket t ON t.id = m.ticket_id "
                       "WHERE t.number = :n AND m.author = :a", n=number, a=supplier)
    assert [tuple(r) for r in row] == [("third_party", "internal")]
    assert _ticket(desk, number).status == "in_progress"
    assert not [m for m in sink.to(customer) if "DX-9" in m.message.get_content()], "the customer sees neither"


# -- tickets for a customer ----------------------------------------------------------------------

def _new_ticket_for(desk: Daemon, sink: Sink, customer: str) -> tuple[int, Received]:
    confirmation = sink.wait_for(customer)[0]
    found = re.search(r"\[#(\d+)\]", str(confirmation.message["Subject"]))
    assert found
    number = int(found.group(1))
    owner = desk.db.scalar("SELECT c.email FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE t.number = :n",
                           n=number)
    assert owner == customer
    assert b"eva@telenta.example" not in confirmation.raw.lower()
    return number, confirmation


@pytest.mark.parametrize("proof", ["dkim", "authentication-results"])
def test_ticket_on_behalf_of_a_caller(desk: Daemon, sink: Sink, keys: dict[str, Key], proof: str) -> None:
    caller = unique_address("caller")
    body = f"#customer Anna Berg <{caller}>\nAnna ringde: brandlarmet i trapphuset tjuter utan anledning.\n\n-- \nEva\n"
    headers = {"Authentication-Results": f"{MTA}; dkim=pass header.d=telenta.example; dmarc=pass "
                                         "header.from=telenta.example"} if proof != "dkim" else None
    _agent_mail(desk, "support@telenta.example", body, subject="Brandlarm i trapphuset", headers=headers,
                key=keys["good"] if proof == "dkim" else None)
    number, confirmation = _new_ticket_for(desk, sink, caller)
    assert "Anna Berg" in confirmation.message.get_content()
    text = desk.db.scalar("SELECT m.text FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE t.number = :n "
                          "AND m.direction = 'in'", n=number)
    assert text.startswith("Anna ringde") and "#customer" not in text
    assert desk.db.scalar("SELECT actor FROM ticketevent e JOIN ticket t ON t.id = e.ticket_id WHERE t.number = :n "
                          "AND e.kind = 'on_behalf'", n=number) == EVA


def test_forwarded_customer_mail_becomes_their_ticket(desk: Daemon, sink: Sink, keys: dict[str, Key]) -> None:
    original = unique_address("orig")
    inline = textwrap.dedent(f"""\
        Kan ni ta den här?

        ---------- Forwarded message ---------
        From: Olle Original <{original}>
        Date: Mon, 23 Nov 2026 at 09:12
        Subject: Brandlarm piper i köket
        To: Eva Lind <eva@telenta.example>

        Hej Eva, larmet i köket piper var tionde minut. /Olle
        """)
    _agent_mail(desk, "support@telenta.example", inline, subject="Fwd: Brandlarm piper i köket", key=keys["good"])
    number, confirmation = _new_ticket_for(desk, sink, original)
    assert "Brandlarm piper i köket" in str(confirmation.message["Subject"])
    assert "Fwd:" not in str(confirmation.message["Subject"])
    texts = desk.db.rows("SELECT m.direction, m.text FROM message m JOIN ticket t ON t.id = m.ticket_id "
                         "WHERE t.number = :n ORDER BY m.id", n=number)
    assert texts[0].text.startswith("Hej Eva, larmet i köket piper")
    assert any(r.direction == "note" and "Kan ni ta den här?" in r.text for r in texts), "the agent's words: a note"

    # As an attachment (message/rfc822), proven by our MTA's Authentication-Results.
    attached = unique_address("attached")
    inner = make_mail(sender=attached, subject="Rökdetektor trasig", body="Rökdetektorn i hallen är trasig.\n",
                      to="eva@telenta.example", name="Alva Bifogad")
    outer = EmailMessage()
    outer["From"] = f"Eva Lind <{EVA}>"
    outer["To"] = "support@telenta.example"
    outer["Subject"] = "Fwd: Rökdetektor trasig"
    outer["Message-ID"] = f"<{uuid.uuid4().hex}@eva-laptop.telenta.example>"
    outer["Authentication-Results"] = f"{MTA}; dkim=pass header.d=telenta.example"
    outer.set_content("Vidarebefordrar.\n")
    outer.add_attachment(email.message_from_bytes(inner, policy=email.policy.default))
    desk.send(outer.as_bytes(), sender=EVA)
    number, confirmation = _new_ticket_for(desk, sink, attached)
    inner_id = re.search(rb"Message-ID: (<[^>]+>)", inner).group(1).decode()  # type: ignore[union-attr]
    assert str(confirmation.message["In-Reply-To"]) == inner_id, "the confirmation answers the customer's own mail"


# -- forged mail -------------------------------------------------------------------------------

def _forgeries(number: int, other: int) -> dict[str, tuple[str, bytes | None]]:
    key = SECRET.encode()
    valid = reply_address(key, "support@telenta.example", number, EVA, "agent")
    local, domain = valid.split("@")
    return {
        "no token": ("support@telenta.example", None),
        "token for another ticket": (valid.replace(f"t{number}.", f"t{other}."), None),
        "token for another agent": (reply_address(key, "support@telenta.example", number, KARIN, "agent"), None),
        "expired token": (reply_address(key, "support@telenta.example", number, EVA, "agent", day=today() - 200), None),
        "tampered token": (f"{local[:-2]}{'00' if not local.endswith('00') else '11'}@{domain}", None),
        "failing DKIM": ("support@telenta.example", b"dkim"),
        # Eva's address as an encoded-word: read as hers, so it needs her proof like any other.
        "encoded From": ("support@telenta.example", None),
    }


CASES = ["no token", "token for another ticket", "token for another agent", "expired token", "tampered token",
         "failing DKIM", "encoded From"]


@pytest.mark.parametrize("case", CASES)
def test_forged_agent_mail_runs_nothing_and_relays_nothing(desk: Daemon, sink: Sink, keys: dict[str, Key],
                                                           case: str) -> None:
    customer = unique_address("victim")
    number, _ = _open(desk, sink, customer)
    other, _ = _open(desk, sink, unique_address("other"))
    _about(sink, EVA, number)
    before = _ticket(desk, number), _ticket(desk, other)
    events = "SELECT count(*) FROM ticketevent WHERE ticket_id IN (SELECT id FROM ticket WHERE number IN (:a, :b))"
    events_before = desk.db.scalar(events, a=number, b=other)
    to, dkim = _forgeries(number, other)[case]
    body = "#take\n#priority urgent\n#close\nNi får inga pengar tillbaka. Skicka kortnummer till svar@evil.example\n"
    local, _, domain = EVA.partition("@")
    _agent_mail(desk, to, body, subject=f"Re: [#{number}] Brandlarm tjuter i källaren",
                key=keys["other"] if dkim else None,
                from_header=f"=?utf-8?Q?{local}?=@{domain}" if case == "encoded From" else "")
    _drained(desk)
    assert (_ticket(desk, number), _ticket(desk, other)) == before
    assert desk.db.scalar(events, a=number, b=other) == events_before, "no command wrote an event"
    assert _queued_to(desk, customer) == 1, "only the customer's confirmation: nothing relayed"
    assert desk.db.scalar("SELECT count(*) FROM outbox WHERE raw LIKE '%evil.example%' AND rcpt_to NOT IN (:e, :a)",
                          e=EVA, a=ADMIN) == 0, "the forged text went to nobody but the address it names"
    assert "without proof" in desk.log()
    # The admin hears of other things too (a tripped budget): wait for this report, not any mail.
    wait_until(lambda: any(EVA in m.message.get_content() and "no command in it was run" in m.message.get_content()
                           for m in sink.to(ADMIN)), what="the forgery report to the admin")


# -- the SLA warning, the agent list, PostgreSQL -----------------------------------------------

def test_sla_warning_to_the_manager_carries_a_working_token(desk: Daemon, sink: Sink, config_file: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from gateway.config import load_config
    from gateway.daemon import build_pipeline
    from gateway.db.engine import make_engine
    from gateway.scheduler import Duties

    number, _ = _open(desk, sink, unique_address("sla"))
    config = load_config(config_file, environ={"POSTDESK_DATABASE__URL": desk.db.url, "POSTDESK_SECRET": SECRET,
                                                "POSTDESK_STORE_DIR": str(config_file.parent / "store")})
    pipeline = build_pipeline(config)
    engine = make_engine(config.database.url)
    try:
        duties = Duties(engine, config, pipeline.notifier, lambda: pipeline.routing.current.directory)
        created = desk.db.scalar("SELECT created_at FROM ticket WHERE number = :n", n=number)
        created = datetime.fromisoformat(created) if isinstance(created, str) else created
        duties.run((created if created.tzinfo else created.replace(tzinfo=UTC)) + timedelta(minutes=21))
    finally:
        engine.dispose()
    # Alone, the warning is a notice about the ticket; with others of the sweep, an item of one list.
    warning = wait_until(lambda: [m.message for m in sink.to(KARIN) if f"[#{number}]" in str(m.message["Subject"])
                                  and "SLA warning" in str(m.message["Subject"])
                                  or f"SLA warning [#{number}]" in m.message.get_content()], what="the warning")[0]
    listed = re.search(rf"SLA warning \[#{number}\].*?: (support\+t{number}\.\S+)", warning.get_content(), re.S)
    if listed is None:
        assert "brandlarmet tjuter hela tiden" in warning.get_content(), "the history excerpt"
    _agent_mail(desk, listed.group(1) if listed else str(warning["Reply-To"]), "#take\n", sender=KARIN)
    wait_until(lambda: _ticket(desk, number).assignee == KARIN, what="the manager took it from the warning")


def test_agents_list(desk: Daemon) -> None:
    listed = desk.cli("agents", "list")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout.decode()
    assert "Eva Lind <eva@telenta.example>: agent; departments fire-national" in out
    assert "Karin Brand <karin.brand@telenta.example>: department manager" in out and "support lead" in out


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_reply_and_forgery_on_postgresql(fresh_db: Database, config_file: Path, tmp_path: Path) -> None:
    sink = Sink().start()
    pg = _daemon(fresh_db, sink, config_file, tmp_path / "pg.log")
    try:
        customer = unique_address("pg")
        number, _ = _open(pg, sink, customer)
        _agent_mail(pg, "support@telenta.example", "#close\n", subject=f"Re: [#{number}]")  # no proof
        _agent_mail(pg, _reply_to(sink, number), "#priority urgent\nVi ringer er inom en timme.\n")
        reply = next(m for m in sink.wait_for(customer, 3) if "inom en timme" in m.message.get_content())
        assert b"eva@telenta.example" not in reply.raw.lower()
        row = _ticket(pg, number)
        assert (row.status, row.assignee, row.priority) == ("in_progress", EVA, "urgent"), "the forged #close did nothing"
    finally:
        pg.stop()
        sink.stop()


def test_unproven_agent_mail_joins_only_tickets_the_address_takes_part_in(desk: Daemon, sink: Sink) -> None:
    # Without proof, eva@ is a customer like any other: her first such mail opens her own ticket...
    _agent_mail(desk, "support@telenta.example", "Brandlarmet hemma hos mig tjuter.\n", subject="Brandlarm hemma")
    own = wait_until(lambda: desk.db.scalar(
        "SELECT t.number FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE c.email = :e "
        "AND t.subject = 'Brandlarm hemma'", e=EVA), what="a ticket of eva's own")
    # ...and a later one naming it joins it as a customer message; its commands stay text.
    _agent_mail(desk, "support@telenta.example", "#close\nFortfarande.\n", subject=f"Re: [#{own}] Brandlarm hemma")
    wait_until(lambda: desk.db.scalar("SELECT count(*) FROM message m JOIN ticket t ON t.id = m.ticket_id "
                                      "WHERE t.number = :n AND m.direction = 'in'", n=own) == 2, what="appended")
    kinds = desk.db.rows("SELECT m.kind, m.visibility FROM message m JOIN ticket t ON t.id = m.ticket_id "
                         "WHERE t.number = :n AND m.direction = 'in'", n=own)
    assert {tuple(r) for r in kinds} == {("customer", "public")}
    assert _ticket(desk, own).status == "new"


def test_authentication_results_from_a_peer_that_is_not_our_mta_proves_nothing(desk: Daemon, sink: Sink) -> None:
    """Postdesk as the MX: anyone on the Internet can write our MTA's header above their mail."""
    import smtplib

    customer = unique_address("mx-victim")
    number, _ = _open(desk, sink, customer)
    _about(sink, EVA, number)
    before = _ticket(desk, number)
    caller = unique_address("mx-caller")
    forged = {"Authentication-Results": f"{MTA}; dkim=pass header.d=telenta.example; dmarc=pass "
                                        "header.from=telenta.example"}
    for subject, body in ((f"Re: [#{number}] Brandlarm tjuter i källaren",
                           "#take\n#priority urgent\n#close\nSkicka kortnummer till svar@evil.example\n"),
                          ("Brandlarm", f"#customer Anna Berg <{caller}>\nRing svar@evil.example.\n")):
        raw = make_mail(sender=EVA, subject=subject, body=body, name="Eva Lind", headers=forged)
        # 127.0.0.2 is a loopback address too, but not one of agent_mail.mta_hosts.
        with smtplib.SMTP("127.0.0.1", desk.port, source_address=("127.0.0.2", 0), timeout=30) as client:
            client.sendmail(EVA, ["support@telenta.example"], raw)
    _drained(desk)
    assert _ticket(desk, number) == before, "no command ran"
    assert _queued_to(desk, customer) == 1, "only the customer's confirmation: nothing relayed"
    assert desk.db.scalar("SELECT count(*) FROM customer WHERE email = :e", e=caller) == 0, "no ticket for the caller"
    assert desk.db.scalar("SELECT count(*) FROM outbox WHERE raw LIKE '%evil.example%' AND rcpt_to NOT IN (:e, :a)",
                          e=EVA, a=ADMIN) == 0
    peers = {row.peer for row in desk.db.rows("SELECT peer FROM inbound ORDER BY id DESC LIMIT 2")}
    assert peers == {"127.0.0.2"}
    traces = desk.db.rows("SELECT trace FROM message WHERE inbound_id IN (SELECT id FROM inbound ORDER BY id DESC "
                          "LIMIT 2)")
    assert traces and all("not one of agent_mail.mta_hosts" in row.trace for row in traces)
