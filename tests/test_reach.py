"""Every ticket reaches someone, with the shipped config/*.yaml and rules/: the directory's
members and managers are the staff, a new ticket's people are told by name, and mail that no
rule, organisation or topic routes goes to the triage department, whose people are told.
"""

from __future__ import annotations

from tests.harness import Daemon, Sink, make_mail, unique_address, wait_until


def _notified(daemon: Daemon, sink: Sink, number: int, person: str) -> None:
    sink.wait_for(person)
    wait_until(lambda: any(f"[#{number}]" in str(m.message["Subject"]) for m in sink.to(person)),
               what=f"new-ticket notice to {person}")


def _number(daemon: Daemon, customer: str) -> tuple[int, str]:
    row = wait_until(lambda: daemon.db.rows("SELECT t.number, t.department FROM ticket t JOIN customer c "
                                            "ON c.id = t.customer_id WHERE c.email = :e", e=customer),
                     what="the ticket")[0]
    return row.number, row.department


def test_a_new_ticket_reaches_a_named_person_with_the_shipped_config(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address("reach")
    daemon.send(make_mail(sender=customer, subject="Brandlarm tjuter i källaren"), sender=customer)
    number, department = _number(daemon, customer)
    assert department == "fire-national"
    for person in ("karin.brand@telenta.example", "johan.eklund@telenta.example", "sara.holm@telenta.example"):
        _notified(daemon, sink, number, person)
    notice = next(m for m in sink.to("johan.eklund@telenta.example") if f"[#{number}]" in str(m.message["Subject"]))
    assert "support+t" in str(notice.message["Reply-To"]), "a named agent can answer the notice by mail"


def test_unrouted_mail_goes_to_triage_and_its_people_are_told(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address("triage")
    daemon.send(make_mail(sender=customer, subject="En fråga om er faktura", body="Hej, vad gäller?\n"),
                sender=customer)
    number, department = _number(daemon, customer)
    assert department == "kundtjanst"
    for person in ("linnea.strom@telenta.example", "supportansvarig@telenta.example"):
        _notified(daemon, sink, number, person)
    trace = daemon.db.scalar("SELECT trace FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE t.number = :n",
                             n=number)
    assert '"triage"' in trace


def test_agents_list_is_the_directory(daemon: Daemon) -> None:
    listed = daemon.cli("agents", "list")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout.decode()
    assert "Karin Brand <karin.brand@telenta.example>: department manager; departments fire-national" in out
    assert "Johan Eklund <johan.eklund@telenta.example>: agent; departments fire-national" in out
    assert "<supportansvarig@telenta.example>: support lead" in out
