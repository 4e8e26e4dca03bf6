"""The ticket lifecycle end to end: CLI actions and customer mail over SMTP, the notification
matrix, languages, opt-out, ratings, reopen versus new linked ticket, and the scheduled duties
driven with a controlled clock (no sleeping).
"""

from __future__ import annotations

import email
import email.policy
import re
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from gateway.i18n.catalogues import gettext
from tests import deskdaemon
from tests.harness import Daemon, Database, Sink, make_mail, unique_address, wait_until
from tests.scheduled import created_at, duties_for, when

CONFIG = textwrap.dedent("""\
    tickets: {language: sv, detect_language: false}
    admin_address: admin@telenta.example
    agents:
      - {name: Eva Lind, address: eva@telenta.example, departments: [fire-national], role: agent}
      - {name: Karin Brand, address: karin.brand@telenta.example, departments: [fire-national], role: manager}
      - {name: Lena Lead, address: lead@telenta.example, role: lead}
    scheduler: {enabled: false}
    """)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "postdesk.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


desk = deskdaemon.desk_on_config_file()


def _open(desk: Daemon, sink: Sink, sender: str, subject: str = "Brandlarm tjuter") -> int:
    desk.send(make_mail(sender=sender, subject=subject), sender=sender)
    found = re.search(r"\[#(\d+)\]", str(sink.wait_for(sender)[0].message["Subject"]))
    assert found
    return int(found.group(1))


def _cli(desk: Daemon, *args: str) -> str:
    result = desk.cli(*args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _status(desk: Daemon, number: int) -> str:
    return desk.db.scalar("SELECT status FROM ticket WHERE number = :n", n=number)


def test_customer_gets_exactly_the_mails_of_the_matrix_in_their_language(desk: Daemon, sink: Sink) -> None:
    customer = unique_address()
    number = _open(desk, sink, customer)
    assert "Tack för ditt meddelande" in sink.to(customer)[0].message.get_content(), "Swedish by config"
    _cli(desk, "ticket", "assign", str(number), "eva@telenta.example")
    assigned = sink.wait_for(customer, 2)[1].message
    assert "Pågår" in str(assigned["Subject"]) and assigned["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert assigned["List-Unsubscribe"].strip().startswith("<http")
    _cli(desk, "ticket", "status", str(number), "waiting_customer", "-m", "Vilken centralapparat har ni?", "--by", "eva@telenta.example")
    question = sink.wait_for(customer, 3)[2].message
    assert "Vilken centralapparat har ni?" in question.get_content()
    assert question["Auto-Submitted"] is None, "a question an agent wrote is not automatic mail"
    desk.send(make_mail(sender=customer, subject=f"Re: [#{number}]", body="Det är en Larmia 3000.\n"), sender=customer)
    wait_until(lambda: _status(desk, number) == "in_progress", what="back in progress on the customer's reply")
    _cli(desk, "ticket", "reply", str(number), "-m", "Vi skickar en tekniker i morgon.", "--by", "eva@telenta.example")
    _cli(desk, "ticket", "status", str(number), "resolved", "--by", "eva@telenta.example")
    mails = sink.wait_for(customer, 5)
    assert "Vi skickar en tekniker i morgon." in mails[3].message.get_content()
    resolved = mails[4].message.get_content()
    assert "/feedback/" in resolved and "Löst" in str(mails[4].message["Subject"])
    # The agent heard that the customer replied; nobody else was mailed about this ticket.
    assert any(str(number) in str(m.message["Subject"]) for m in sink.to("eva@telenta.example"))
    assert len(sink.to(customer)) == 5
    # Threading: every mail answers the ticket's thread.
    assert all(m.message["In-Reply-To"] for m in mails)


def test_opted_out_customer_still_gets_question_and_resolution(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("quiet")
    number = _open(desk, sink, customer)
    _cli(desk, "customer", "set", customer, "--status-mail", "off")
    _cli(desk, "ticket", "assign", str(number), "eva@telenta.example")  # a status change: not sent
    _cli(desk, "ticket", "status", str(number), "waiting_customer", "-m", "Vilken adress?")
    _cli(desk, "ticket", "status", str(number), "resolved")
    mails = sink.wait_for(customer, 3)
    subjects = [str(m.message["Subject"]) for m in mails]
    assert "Pågår" not in " ".join(subjects)
    assert "Vilken adress?" in mails[1].message.get_content() and "Löst" in subjects[2]


def test_language_per_customer(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("ro")
    number = _open(desk, sink, customer)
    _cli(desk, "customer", "set", customer, "--language", "ro")
    _cli(desk, "ticket", "status", str(number), "resolved")
    assert "Rezolvat" in str(sink.wait_for(customer, 2)[1].message["Subject"])


def test_rating_by_reply_counts_for_the_resolving_agent(desk: Daemon, sink: Sink) -> None:
    customer = unique_address()
    number = _open(desk, sink, customer)
    _cli(desk, "ticket", "assign", str(number), "eva@telenta.example")
    _cli(desk, "ticket", "status", str(number), "resolved", "--by", "eva@telenta.example")
    desk.send(make_mail(sender=customer, subject=f"Re: [#{number}]", body="5 - snabbt och bra!\n"), sender=customer)
    wait_until(lambda: desk.db.scalar("SELECT score FROM rating r JOIN ticket t ON t.id = r.ticket_id WHERE t.number = :n",
                                      n=number) == 5, what="rating")
    assert _status(desk, number) == "resolved", "a rating does not reopen"
    report = _cli(desk, "report", "feedback")
    assert "eva@telenta.example" in report and "snabbt och bra!" in report


def test_reply_to_resolved_reopens_reply_to_closed_opens_linked_ticket(desk: Daemon, sink: Sink) -> None:
    customer = unique_address()
    number = _open(desk, sink, customer)
    _cli(desk, "ticket", "status", str(number), "resolved")
    desk.send(make_mail(sender=customer, subject=f"Re: [#{number}]", body="Det tjuter igen.\n"), sender=customer)
    wait_until(lambda: _status(desk, number) == "in_progress", what="reopened")
    _cli(desk, "ticket", "status", str(number), "closed")
    desk.send(make_mail(sender=customer, subject=f"Re: [#{number}]", body="Och nu igen!\n"), sender=customer)
    new = wait_until(lambda: desk.db.scalar(
        "SELECT number FROM ticket WHERE linked_ticket_id = (SELECT id FROM ticket WHERE number = :n)", n=number), what="linked")
    assert _status(desk, number) == "closed", "closed is never reopened"
    # The closed ticket's own status mail may still be on its way: wait for the new ticket's.
    confirmation = sink.wait_matching(customer, lambda m: f"[#{new}]" in str(m.message["Subject"]))
    assert f"[#{number}]" in confirmation.message.get_content(), "the confirmation says which ticket it follows"


def test_invalid_transition_is_refused_with_a_clear_message(desk: Daemon, sink: Sink) -> None:
    number = _open(desk, sink, unique_address())
    _cli(desk, "ticket", "status", str(number), "closed")
    result = desk.cli("ticket", "status", str(number), "in_progress")
    assert result.returncode == 1
    assert b"closed" in result.stderr and b"new ticket" in result.stderr


def test_ticket_show_explains_the_clocks(desk: Daemon, sink: Sink) -> None:
    number = _open(desk, sink, unique_address())
    shown = _cli(desk, "ticket", "show", str(number))
    assert "assign" in shown and "due" in shown and "30 min of time" in shown
    assert "created -> new" in shown


# -- scheduled duties with a controlled clock --------------------------------------------

@pytest.fixture
def duties(desk: Daemon, config_file: Path) -> Any:
    with duties_for(desk, config_file, POSTDESK_SCHEDULER__TIMEZONE="UTC") as found:
        yield found


_when = when


def _created_at(desk: Daemon, number: int) -> datetime:
    return created_at(desk, number)


def _staff(desk: Daemon, to: str, number: int | None, event: str) -> int:
    """Notices of `event` about `number` to `to`: alone, or listed in a sweep's one mail to them."""
    rows = desk.db.rows("SELECT kind, raw FROM outbox WHERE rcpt_to = :t AND kind IN (:k, 'staff:sweep')",
                        t=to, k=f"staff:{event}")
    found = 0
    for kind, raw in rows:
        if kind == "staff:sweep":
            # The list names each notice by its title in the reader's language (Swedish here).
            title = gettext("sv", event)
            found += email.message_from_bytes(raw, policy=email.policy.default).get_content().count(f"{title} [#{number}]")
        elif number is None or str(number).encode() in raw:
            found += 1
    return found


def test_warning_breach_and_escalation_each_exactly_once(desk: Daemon, sink: Sink, duties: Any) -> None:
    from gateway.metrics import REGISTRY

    def counted(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    def events(kind: str) -> int:
        return int(desk.db.scalar("SELECT count(*) FROM ticketevent WHERE kind = :k", k=kind))

    warned, breached = counted("postdesk_sla_warnings_total"), counted("postdesk_sla_breaches_total")
    warned_events, breached_events = events("sla_warning"), events("sla_breach")
    number = _open(desk, sink, unique_address(), subject="Brandlarm i källaren")
    start = _created_at(desk, number)
    duties.run(start + timedelta(minutes=5))
    assert _staff(desk, "karin.brand@telenta.example", number, "SLA warning") == 0
    duties.run(start + timedelta(minutes=21))  # assign: 30 min, warned 10 min before
    duties.run(start + timedelta(minutes=22))
    assert _staff(desk, "karin.brand@telenta.example", number, "SLA warning") == 1
    duties.run(start + timedelta(minutes=31))
    duties.run(start + timedelta(minutes=40))
    assert _staff(desk, "karin.brand@telenta.example", number, "SLA breached") == 1
    assert _staff(desk, "lead@telenta.example", number, "SLA breach escalated") == 0
    duties.run(start + timedelta(minutes=95))  # an hour after the breach: the support lead
    duties.run(start + timedelta(minutes=120))
    assert _staff(desk, "lead@telenta.example", number, "SLA breach escalated") == 1
    # /metrics counts what the sweeps sent (for this ticket and the module's others), once each,
    # however often they ran: exactly as many as the sweeps recorded on tickets.
    assert events("sla_warning") > warned_events and events("sla_breach") > breached_events
    assert counted("postdesk_sla_warnings_total") - warned == events("sla_warning") - warned_events
    assert counted("postdesk_sla_breaches_total") - breached == events("sla_breach") - breached_events


def test_waiting_on_the_customer_pauses_the_clock(desk: Daemon, sink: Sink, duties: Any) -> None:
    number = _open(desk, sink, unique_address(), subject="Brandlarm på vinden")
    start = _created_at(desk, number)
    with duties.engine.begin() as conn:
        ticket_id = conn.execute(text("SELECT id FROM ticket WHERE number = :n"), {"n": number}).scalar()
        from gateway.tickets.store import add_event

        add_event(conn, ticket_id, "status", status="waiting_customer", actor="test", at=start + timedelta(minutes=5))
        conn.execute(text("UPDATE ticket SET status = 'waiting_customer' WHERE id = :i"), {"i": ticket_id})
    duties.run(start + timedelta(hours=5))
    assert _staff(desk, "karin.brand@telenta.example", number, "SLA breached") == 0, "paused since minute 5"
    from gateway.tickets.clocks import clocks
    from gateway.tickets.explain import explain

    with duties.engine.connect() as conn:
        ticket = conn.execute(text("SELECT * FROM ticket WHERE number = :n"), {"n": number}).one()
        state = clocks(conn, duties.config, ticket, start + timedelta(hours=5))
    assert state.assign is not None and state.assign.elapsed == timedelta(minutes=5)
    assert "waiting for customer" in explain(state.assign)


def test_digest_lists_unanswered_and_overdue_once_a_day(desk: Daemon, sink: Sink, duties: Any) -> None:
    number = _open(desk, sink, unique_address(), subject="Brandlarm i garaget")
    start = _created_at(desk, number)
    late_evening = start.replace(hour=23, minute=59, second=30) + timedelta(days=1)
    duties.run(late_evening)
    duties.run(late_evening + timedelta(seconds=10))
    digests = desk.db.rows("SELECT raw FROM outbox WHERE rcpt_to = 'lead@telenta.example' AND kind = 'staff:Daily digest'")
    today = [raw for (raw,) in digests if late_evening.date().isoformat().encode() in raw]
    assert len(today) == 1
    assert str(number).encode() in today[0]
    import email
    import email.policy

    words = email.message_from_bytes(bytes(today[0]), policy=email.policy.default).get_content()  # type: ignore[attr-defined]
    assert "Obesvarade ärenden" in words and "Försenade ärenden" in words, "the lead reads Swedish"
    assert f"/tickets/{number}" in words, "each ticket with its link"


def test_first_digest_is_the_day_after_a_desk_starts_past_its_time(desk: Daemon, sink: Sink, config_file: Path) -> None:
    number = _open(desk, sink, unique_address(), subject="Larmet piper")
    first = when(desk.db.scalar("SELECT min(created_at) FROM ticket"))
    # In the order written: PostgreSQL returns rows in no set order once the relay has updated them.
    query = "SELECT raw FROM outbox WHERE rcpt_to = 'lead@telenta.example' AND kind = 'staff:Daily digest' ORDER BY id"
    with duties_for(desk, config_file, POSTDESK_SCHEDULER__TIMEZONE="UTC", POSTDESK_SCHEDULER__DIGEST_TIME="00:00") as early:
        before = len(desk.db.rows(query))
        # The digest fell due at midnight, before this desk's first ticket: no catching up on it.
        early.run(first + timedelta(seconds=1))
        assert len(desk.db.rows(query)) == before
        # Days later (out of the other digest tests' way) the desk has a day behind it.
        later = datetime.combine(first.date() + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
        early.run(later + timedelta(seconds=30))
        early.run(later + timedelta(seconds=40))
    sent = desk.db.rows(query)[before:]
    assert len(sent) == 1 and later.date().isoformat().encode() in bytes(sent[0][0])
    assert str(number).encode() in bytes(sent[0][0])


def test_resolved_tickets_close_automatically(desk: Daemon, sink: Sink, duties: Any) -> None:
    number = _open(desk, sink, unique_address())
    _cli(desk, "ticket", "status", str(number), "resolved")
    resolved_at = _when(desk.db.scalar("SELECT resolved_at FROM ticket WHERE number = :n", n=number))
    duties.run(resolved_at + timedelta(days=6))
    assert _status(desk, number) == "resolved"
    duties.run(resolved_at + timedelta(days=7, minutes=1))
    assert _status(desk, number) == "closed"


def test_daily_backup_holds_every_table_and_the_secret(desk: Daemon, duties: Any, sink: Sink) -> None:
    import json
    import shutil
    import stat
    import tarfile

    # One store serves both backends' modules: the other's backup of the same day must not count.
    shutil.rmtree(Path(duties.config.store_dir) / "backups", ignore_errors=True)
    number = _open(desk, sink, unique_address())
    report = duties.run(_created_at(desk, number).replace(hour=23, minute=59, second=40) + timedelta(days=2))
    assert len(report.backups) == 1
    assert stat.S_IMODE(Path(report.backups[0]).stat().st_mode) == 0o600
    with tarfile.open(report.backups[0]) as tar:
        tickets = [json.loads(line) for line in tar.extractfile("tables/ticket.jsonl")]  # type: ignore[union-attr]
        assert tar.extractfile("secret.key").read()  # type: ignore[union-attr]
    assert [t for t in tickets if t["number"] == number]


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_two_daemons_on_one_database_escalate_and_digest_once(fresh_db: Database, config_file: Path, tmp_path: Path) -> None:
    sink = Sink().start()
    env = {"POSTDESK_CONFIG": str(config_file), "POSTDESK_SCHEDULER__ENABLED": "true",
           "POSTDESK_SCHEDULER__SWEEP_SECONDS": "1", "POSTDESK_SCHEDULER__DIGEST_TIME": "00:00",
           "POSTDESK_SCHEDULER__TIMEZONE": "UTC", "POSTDESK_SLA__ESCALATE_TO_LEAD_AFTER": "0"}
    first = Daemon(fresh_db, sink, tmp_path / "one.log", env_extra={**env, "POSTDESK_INSTANCE": "one"}).start()
    second = Daemon(fresh_db, sink, tmp_path / "two.log", env_extra={**env, "POSTDESK_INSTANCE": "two"}).start()
    try:
        customer = unique_address()
        first.send(make_mail(sender=customer, subject="Brandlarm i trapphuset"), sender=customer)
        sink.wait_for(customer)
        # Two hours ago: the 30-minute assign target is long breached. The ticket was there
        # yesterday too, so today's digest (due at midnight) has a day to report on.
        with fresh_db.engine.begin() as conn:
            conn.execute(text("UPDATE ticketevent SET at = at - interval '2 hours'"))
            conn.execute(text("UPDATE ticket SET created_at = created_at - interval '1 day'"))
        sink.wait_for("karin.brand@telenta.example", 1, timeout=30)
        sink.wait_for("lead@telenta.example", 2, timeout=30)  # the escalation and the digest
        # Several more sweeps of both daemons: nothing more may arrive.
        time.sleep(3)
        breach = [m for m in sink.to("karin.brand@telenta.example") if "SLA överskridet" in str(m.message["Subject"])]
        lead = [str(m.message["Subject"]) for m in sink.to("lead@telenta.example")]
        assert len(breach) == 1, "the assign target (30 min) is breached; first response (4 h) is not yet"
        # The config's language is Swedish, and so are the notices' subjects.
        assert sum("eskalerat" in s for s in lead) == 1 and sum("sammanställning" in s for s in lead) == 1
    finally:
        first.stop()
        second.stop()
        sink.stop()


def test_one_click_unsubscribe_stops_status_mail_only(desk: Daemon, sink: Sink) -> None:
    import urllib.request

    customer = unique_address("click")
    number = _open(desk, sink, customer)
    _cli(desk, "ticket", "assign", str(number), "eva@telenta.example")
    header = str(sink.wait_for(customer, 2)[1].message["List-Unsubscribe"]).strip()
    url = header.strip("<>")
    # RFC 8058: the mail client POSTs this body, with no cookies and no CSRF token.
    request = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    assert desk.db.scalar("SELECT notifications_off FROM customer WHERE email = :e", e=customer) in (True, 1)
    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    try:
        urllib.request.urlopen(urllib.request.Request(forged, data=b"List-Unsubscribe=One-Click", method="POST"), timeout=10)
        raise AssertionError("a tampered token must be refused")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
    _cli(desk, "ticket", "status", str(number), "waiting_third_party")  # opt-out: not sent
    _cli(desk, "ticket", "status", str(number), "resolved")  # always sent
    mails = sink.wait_for(customer, 3)
    assert "Löst" in str(mails[2].message["Subject"])
    assert len(sink.to(customer)) == 3
