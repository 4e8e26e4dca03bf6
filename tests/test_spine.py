"""The spine over the wire: SMTP in, ticket stored, confirmation out, replies threaded.

Each test runs against a real daemon process on SQLite and on PostgreSQL, speaking SMTP with
smtplib and reading what the daemon sent from a real SMTP sink.
"""

from __future__ import annotations

import re
import smtplib
import subprocess
import uuid

import pytest

from tests.harness import REPO, Daemon, Sink, make_mail, unique_address, wait_until

FIXTURES = REPO / "tests" / "fixtures" / "mail"

TAG = re.compile(r"\[#(\d+)\]")


def _ticket_number(sink: Sink, address: str, count: int = 1) -> int:
    confirmation = sink.wait_for(address, count)[count - 1]
    found = TAG.search(str(confirmation.message["Subject"]))
    assert found, confirmation.message["Subject"]
    return int(found.group(1))


def test_confirmation_carries_number_and_threading_headers(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address()
    first_id = f"<first-{customer.split('@')[0]}@kund.example>"
    daemon.send(make_mail(sender=customer, subject="Brandlarm tjuter", message_id=first_id), sender=customer)
    mail = sink.wait_for(customer)[0]
    number = _ticket_number(sink, customer)
    assert str(number) in mail.message.get_content()
    assert str(mail.message["Subject"]).endswith("Brandlarm tjuter")
    assert mail.message["In-Reply-To"] == first_id
    assert mail.message["Auto-Submitted"] == "auto-replied"
    assert mail.message["X-Auto-Response-Suppress"] == "All"
    assert mail.message["Message-ID"].endswith("@postdesk.telenta.example>")
    assert len(mail.message["X-Postdesk-Loop"]) == 20, "a token derived from the secret, not the domain"
    assert mail.mail_from == "support@telenta.example"
    assert daemon.db.scalar("SELECT status FROM ticket WHERE number = :n", n=number) == "new"
    assert daemon.db.scalar(
        "SELECT count(*) FROM customer WHERE email = :e", e=customer
    ) == 1, "the customer is registered on their first mail"


def test_confirmation_answers_from_the_mailbox_written_to(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address()
    daemon.send(make_mail(sender=customer, subject="Beställning", to="order@telenta.example"),
                sender=customer, to=["order@telenta.example"])
    assert sink.wait_for(customer)[0].mail_from == "order@telenta.example"


def test_reply_with_tag_threads_onto_the_ticket(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address()
    daemon.send(make_mail(sender=customer, subject="Passagesystem fungerar inte"), sender=customer)
    number = _ticket_number(sink, customer)
    daemon.send(make_mail(sender=customer, subject=f"Re: [#{number}] Passagesystem", body="Kod 1234 fungerar inte heller."), sender=customer)
    wait_until(lambda: daemon.db.scalar(
        "SELECT count(*) FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE t.number = :n AND m.direction = 'in'", n=number) == 2,
        what="the reply on the ticket")
    assert daemon.db.scalar(
        "SELECT count(*) FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE c.email = :e", e=customer) == 1
    assert daemon.db.scalar("SELECT thread_by FROM message WHERE text LIKE 'Kod 1234%'") == "subject"
    assert len(sink.to(customer)) == 1, "a follow-up gets no second confirmation"


def test_reply_by_in_reply_to_threads_without_tag(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address()
    daemon.send(make_mail(sender=customer, subject="Trygghetslarm"), sender=customer)
    confirmation = sink.wait_for(customer)[0].message
    number = _ticket_number(sink, customer)
    reply = make_mail(sender=customer, subject="changed subject entirely", body="More details here.",
                      headers={"In-Reply-To": confirmation["Message-ID"], "References": confirmation["Message-ID"]})
    daemon.send(reply, sender=customer)
    wait_until(lambda: daemon.db.scalar(
        "SELECT t.number FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE m.text LIKE 'More details here.%'"),
        what="the reply stored")
    assert daemon.db.scalar(
        "SELECT t.number FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE m.text LIKE 'More details here.%'") == number
    assert daemon.db.scalar("SELECT thread_by FROM message WHERE text LIKE 'More details here.%'") == "references"


def test_forged_tag_from_stranger_opens_new_ticket(daemon: Daemon, sink: Sink) -> None:
    victim, stranger = unique_address("victim"), unique_address("stranger")
    daemon.send(make_mail(sender=victim, subject="Inbrottslarm"), sender=victim)
    number = _ticket_number(sink, victim)
    daemon.send(make_mail(sender=stranger, subject=f"Re: [#{number}] let me in", body="Injected text."), sender=stranger)
    stranger_number = _ticket_number(sink, stranger)
    assert stranger_number != number
    assert daemon.db.scalar(
        "SELECT count(*) FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE t.number = :n AND m.text LIKE 'Injected%'", n=number) == 0


def test_foreign_recipient_is_refused_550(daemon: Daemon) -> None:
    with daemon.smtp() as client:
        client.ehlo()
        client.mail("someone@example.org")
        code, text = client.rcpt("victim@elsewhere.example")
        assert code == 550, text
        code, _ = client.rcpt("support@telenta.example.evil.example")
        assert code == 550
        code, _ = client.rcpt("Support@Telenta.Example")
        assert code == 250, "addresses compare case-insensitively"


def test_oversize_message_is_refused_552(daemon: Daemon) -> None:
    customer = unique_address()
    big = make_mail(sender=customer, subject="huge", body="x" * 400_000)
    with pytest.raises(smtplib.SMTPResponseException) as caught:
        daemon.send(big, sender=customer)
    assert caught.value.smtp_code == 552
    assert daemon.db.scalar("SELECT count(*) FROM inbound WHERE mail_from = :s", s=customer) == 0


BROKEN = (
    b"From: Broken <broken-{n}@kund.example>\r\nTo: support@telenta.example\r\nSubject: =?utf-8?B?broken*base64\r\n"
    b"Content-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n--wrong\r\nContent-Type: text/plain; charset=x-unknown-9\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n"
)


def test_broken_mime_is_kept_never_dropped(daemon: Daemon) -> None:
    sender = unique_address("broken")
    raw = BROKEN.replace(b"broken-{n}@kund.example", sender.encode())
    daemon.send(raw, sender=sender)
    state = wait_until(lambda: daemon.db.scalar(
        "SELECT state FROM inbound WHERE mail_from = :s AND state != 'queued'", s=sender), what="processing")
    assert state in ("done", "quarantined")
    assert daemon.db.scalar("SELECT raw FROM inbound WHERE mail_from = :s", s=sender) == raw
    if state == "done":
        assert daemon.db.scalar(
            "SELECT count(*) FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE c.email = :e", e=sender) == 1


def test_message_without_any_sender_is_quarantined_with_reason_and_can_be_retried(daemon: Daemon) -> None:
    raw = b"To: support@telenta.example\r\nSubject: who am I\r\n\r\nno From header at all\r\n"
    # Through the pipe without --sender: the envelope is unknown (a null sender would be a bounce).
    assert daemon.cli("inject", stdin=raw).returncode == 0
    entry_id = wait_until(lambda: daemon.db.scalar(
        "SELECT q.id FROM quarantine q JOIN inbound i ON i.id = q.inbound_id WHERE i.raw = :r", r=raw), what="quarantine")
    listing = daemon.cli("quarantine", "list")
    assert listing.returncode == 0
    assert "no sender" in listing.stdout.decode()
    shown = daemon.cli("quarantine", "show", str(entry_id))
    assert "who am I" in shown.stdout.decode() and "classify" in shown.stdout.decode()
    assert daemon.cli("quarantine", "show", str(entry_id), "--raw").stdout == raw
    retried = daemon.cli("quarantine", "retry", str(entry_id))
    assert retried.returncode == 0 and "1 message(s)" in retried.stdout.decode()
    # Still broken, so it comes back to quarantine: a second entry, the first marked retried.
    wait_until(lambda: daemon.db.scalar(
        "SELECT count(*) FROM quarantine q JOIN inbound i ON i.id = q.inbound_id WHERE i.raw = :r", r=raw) == 2,
        what="second quarantine entry")
    assert daemon.db.scalar("SELECT released_at FROM quarantine WHERE id = :i", i=entry_id) is not None


def test_sender_on_a_one_label_domain_opens_a_ticket(daemon: Daemon) -> None:
    # mutt on a private network's host, through the MTA pipe with no envelope sender given.
    sender = f"nils-{uuid.uuid4().hex[:8]}@kontoret"
    raw = (b"From: Nils Ahl <" + sender.encode() + b">\r\nTo: support@telenta.example\r\n"
           b"Subject: Larmpanelen piper\r\nUser-Agent: Mutt/2.2.12\r\n\r\nPanelen i lagret piper.\r\n")
    assert daemon.cli("inject", stdin=raw).returncode == 0
    wait_until(lambda: daemon.db.scalar("SELECT state FROM inbound WHERE raw = :r", r=raw) in ("done", "quarantined"),
               what="processing")
    assert daemon.db.scalar("SELECT state FROM inbound WHERE raw = :r", r=raw) == "done"
    assert daemon.db.scalar(
        "SELECT c.name FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE c.email = :e", e=sender) == "Nils Ahl"
    assert daemon.db.scalar("SELECT count(*) FROM outbox WHERE rcpt_to = :e AND kind = 'confirmation'", e=sender) == 1


def test_sender_with_a_quoted_local_part_gets_the_confirmation(daemon: Daemon, sink: Sink) -> None:
    # RFC 5322 lets a local part in quotes hold spaces; the reply goes back to it over SMTP as written.
    sender = f'"nils ahl {uuid.uuid4().hex[:8]}"@kund.example'
    raw = (b"From: Nils Ahl <" + sender.encode() + b">\r\nTo: support@telenta.example\r\n"
           b"Subject: Larmpanelen piper\r\nMessage-ID: <" + uuid.uuid4().hex.encode() + b"@kund.example>\r\n"
           b"\r\nPanelen i lagret piper.\r\n")
    daemon.send(raw, sender=sender)
    confirmation = sink.wait_for(sender)[0]
    assert "Larmpanelen piper" in str(confirmation.message["Subject"])
    assert daemon.db.scalar(
        "SELECT c.name FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE c.email = :e", e=sender) == "Nils Ahl"


def test_html_only_mail_with_a_stub_plain_form_keeps_the_customers_words(daemon: Daemon, sink: Sink) -> None:
    # A web shop's mailer: the plain alternative only says "activate HTML"; the words are in the HTML.
    sender = unique_address("karin")
    raw = (FIXTURES / "body_html_stub_plain.eml").read_bytes().replace(b"karin.lind@kund.example", sender.encode())
    daemon.send(raw, sender=sender)
    sink.wait_for(sender)
    text, body = daemon.db.rows(
        "SELECT m.text, m.body FROM message m JOIN ticket t ON t.id = m.ticket_id JOIN customer c "
        "ON c.id = t.customer_id WHERE c.email = :e AND m.direction = 'in'", e=sender)[0]
    assert text.startswith("Hej,\n\nvi beställde tolv rökdetektorer men fick bara sex.")
    assert "activate HTML" not in body and "Västerås" in body


def test_html_message_with_a_plain_disclaimer_part_keeps_the_customers_words(daemon: Daemon, sink: Sink) -> None:
    # multipart/mixed: the words in an HTML part, a mail gateway's plain disclaimer after it.
    sender = unique_address("eva")
    raw = (FIXTURES / "body_mixed_html_and_disclaimer.eml").read_bytes().replace(b"eva.strand@kund.example",
                                                                                sender.encode())
    daemon.send(raw, sender=sender)
    sink.wait_for(sender)
    text, body = daemon.db.rows(
        "SELECT m.text, m.body FROM message m JOIN ticket t ON t.id = m.ticket_id JOIN customer c "
        "ON c.id = t.customer_id WHERE c.email = :e AND m.direction = 'in'", e=sender)[0]
    assert text == "Hej,\n\nlarmet i hallen går igång varje natt klockan två."
    assert "larmet i hallen" in body and "konfidentiell information" in body


def test_duplicate_delivery_becomes_one_message(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address()
    raw = make_mail(sender=customer, subject="Samma brev två gånger")
    daemon.send(raw, sender=customer)
    # An MTA retry after a lost 250: same message, with one more Received header.
    daemon.send(b"Received: from mx2.kund.example by us; Mon, 23 Nov 2026 10:00:00 +0000\r\n" + raw, sender=customer)
    wait_until(lambda: daemon.db.scalar(
        "SELECT count(*) FROM inbound WHERE mail_from = :s AND state = 'done'", s=customer) == 2, what="both processed")
    assert daemon.db.scalar(
        "SELECT count(*) FROM message m JOIN ticket t ON t.id = m.ticket_id JOIN customer c ON c.id = t.customer_id "
        "WHERE c.email = :e AND m.direction = 'in'", e=customer) == 1
    assert "duplicate" in daemon.db.scalar(
        "SELECT note FROM inbound WHERE mail_from = :s ORDER BY id DESC LIMIT 1", s=customer)
    assert daemon.db.scalar("SELECT count(*) FROM outbox WHERE rcpt_to = :c", c=customer) == 1
    assert len(sink.wait_for(customer)) == 1


def test_inject_from_an_mta_pipe(daemon: Daemon, sink: Sink) -> None:
    customer = unique_address("pipe")
    done = daemon.cli("inject", "--mailbox", "service@telenta.example", stdin=make_mail(sender=customer, subject="Via pipe"))
    assert done.returncode == 0, done.stderr
    confirmation = sink.wait_for(customer)[0]
    assert confirmation.mail_from == "service@telenta.example"
    refused = daemon.cli("inject", "--mailbox", "nobody@elsewhere.example", stdin=b"Subject: x\r\n\r\nx")
    assert refused.returncode == 67


def test_inject_exits_75_when_the_store_is_unavailable(daemon: Daemon) -> None:
    down = {"POSTDESK_DATABASE__URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"}
    result = daemon.cli("inject", stdin=make_mail(sender="x@kund.example", subject="later"), env=down)
    assert result.returncode == 75, result.stderr
    assert b"store unavailable" in result.stderr


def test_bad_setting_is_one_clear_line_before_start(daemon: Daemon) -> None:
    result = daemon.cli("serve", env={"POSTDESK_RELAY__PORT": "seventy"})
    assert result.returncode == 78
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "relay.port" in lines[0] and "POSTDESK_RELAY__PORT" in lines[0]


def test_sigterm_stops_cleanly(daemon: Daemon, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> None:
    own = Daemon(daemon.db, sink, tmp_path_factory.mktemp("own") / "d.log").start()
    customer = unique_address()
    own.send(make_mail(sender=customer, subject="before stop"), sender=customer)
    assert own.stop() == 0
    assert "stopped" in own.log()
    # Whatever the daemon had not finished is still queued, and the other daemon finishes it.
    sink.wait_for(customer)
    assert isinstance(own.proc, subprocess.Popen)
