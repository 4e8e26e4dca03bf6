"""One mail, one message, whatever the delivery: the same mail delivered once per recipient
(same Message-ID and body, another envelope recipient, as an MTA's pipe transport or a split
SMTP delivery does) is stored once and fanned out by the rules over all its recipients, with
one confirmation per ticket; over SMTP and `postdesk inject`, on SQLite and PostgreSQL, with the
shipped config (order@ goes to the order desk, fire alarms to the national fire team).
"""

from __future__ import annotations

from typing import Any

from tests.harness import Daemon, Sink, make_mail, unique_address, wait_until

SUPPORT, SERVICE, ORDER = "support@telenta.example", "service@telenta.example", "order@telenta.example"


def _tickets(daemon: Daemon, customer: str) -> list[Any]:
    return daemon.db.rows("SELECT t.number, t.department, t.mailbox FROM ticket t JOIN customer c "
                          "ON c.id = t.customer_id WHERE c.email = :e ORDER BY t.number", e=customer)


def _processed(daemon: Daemon, raw_marker: str, count: int) -> None:
    """`count` deliveries whose Message-ID is `raw_marker` have been processed."""
    def done() -> bool:
        rows = daemon.db.rows("SELECT state, raw FROM inbound WHERE state != 'queued'")
        return sum(raw_marker.encode() in bytes(r.raw) for r in rows) >= count
    wait_until(done, what=f"{count} deliveries processed")


def _confirmations(daemon: Daemon, customer: str) -> int:
    return daemon.db.scalar("SELECT count(*) FROM outbox WHERE rcpt_to = :c AND kind = 'confirmation'", c=customer)


def _messages_in(daemon: Daemon, customer: str) -> int:
    return daemon.db.scalar("SELECT count(*) FROM message m JOIN ticket t ON t.id = m.ticket_id JOIN customer c "
                            "ON c.id = t.customer_id WHERE c.email = :e AND m.direction = 'in'", e=customer)


def test_per_recipient_smtp_delivery_to_one_department_is_one_ticket(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address("split")
    mid = f"<split-{customer.split('@')[0]}@kund.example>"
    raw = make_mail(sender=customer, subject="Brandlarm tjuter", to=f"{SUPPORT}, {SERVICE}", message_id=mid)
    for box in (SUPPORT, SERVICE):  # one SMTP transaction per recipient, as a splitting MTA does
        daemon.send(raw, sender=customer, to=[box])
    _processed(daemon, mid, 2)
    tickets = _tickets(daemon, customer)
    assert [(t.department, t.mailbox) for t in tickets] == [("fire-national", SUPPORT)]
    assert _messages_in(daemon, customer) == 1
    assert _confirmations(daemon, customer) == 1
    assert len(sink.wait_for(customer)) == 1


def test_per_recipient_delivery_fans_out_by_the_rules_once(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address("fan")
    mid = f"<fan-{customer.split('@')[0]}@kund.example>"
    raw = make_mail(sender=customer, subject="Brandlarm och beställning", to=f"{SUPPORT}, {ORDER}", message_id=mid)
    daemon.send(raw, sender=customer, to=[ORDER])
    daemon.send(raw, sender=customer, to=[SUPPORT])
    _processed(daemon, mid, 2)
    assert sorted(t.department for t in _tickets(daemon, customer)) == ["fire-national", "orders"]
    assert _confirmations(daemon, customer) == 2, "one confirmation per ticket"
    assert len(sink.wait_for(customer, 2)) == 2


def test_a_bcc_delivered_on_its_own_opens_only_its_own_department(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address("bcc")
    mid = f"<bcc-{customer.split('@')[0]}@kund.example>"
    raw = make_mail(sender=customer, subject="Brandlarm och beställning", to=SUPPORT, message_id=mid)
    daemon.send(raw, sender=customer, to=[SUPPORT])
    daemon.send(raw, sender=customer, to=[ORDER])  # order@ was a Bcc: in no header
    daemon.send(raw, sender=customer, to=[ORDER])  # the MTA's retry adds nothing
    _processed(daemon, mid, 3)
    assert sorted(t.department for t in _tickets(daemon, customer)) == ["fire-national", "orders"]
    assert _confirmations(daemon, customer) == 2


def test_inject_per_recipient_and_without_mailbox(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address("piped")
    mid = f"<piped-{customer.split('@')[0]}@kund.example>"
    raw = make_mail(sender=customer, subject="Brandlarm tjuter", to=f"{SUPPORT}, {SERVICE}", message_id=mid)
    for box in (SUPPORT, SERVICE):  # the README's pipe recipe: argv ... --mailbox ${recipient}
        done = daemon.cli("inject", "--mailbox", box, "--sender", customer, stdin=raw)
        assert done.returncode == 0, done.stderr
    _processed(daemon, mid, 2)
    assert len(_tickets(daemon, customer)) == 1 and _confirmations(daemon, customer) == 1

    # Without --mailbox the message's own headers say whom it is for: service@, not support@.
    other = unique_address("piped-service")
    raw = b"Delivered-To: service@telenta.example\r\n" + make_mail(sender=other, subject="Fråga", to=SERVICE)
    done = daemon.cli("inject", stdin=raw)
    assert done.returncode == 0, done.stderr
    assert SERVICE in done.stdout.decode()
    assert sink.wait_for(other)[0].mail_from == SERVICE
    assert [t.mailbox for t in _tickets(daemon, other)] == [SERVICE]
    # Nothing of ours anywhere: refused as an unknown mailbox (67), not filed under support@.
    lost = daemon.cli("inject", stdin=make_mail(sender=other, subject="x", to="someone@elsewhere.example"))
    assert lost.returncode == 67 and b"none of our mailboxes" in lost.stderr
