"""`postdesk ticket show N` prints the messages (author, time, kind, new text, attachments) and
the links between tickets, against a real daemon fed over SMTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from tests.harness import Daemon, Database, Sink, unique_address, wait_until


@pytest.fixture(scope="module")
def desk(backend: Database, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    proc = Daemon(backend, sink, tmp_path_factory.mktemp("log") / "daemon.log").start()
    yield proc
    proc.stop()


def _mail(sender: str, subject: str, body: str, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@telenta.example", subject
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="rapport.pdf")
    return msg.as_bytes()


def _show(desk: Daemon, number: int) -> str:
    result = desk.cli("ticket", "show", str(number))
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_ticket_show_prints_messages_and_links(desk: Daemon, sink: Sink) -> None:
    customer = unique_address()
    desk.send(_mail(customer, "Brandlarm tjuter", "Larmet i trapphuset tjuter hela tiden sedan i morse.\n",
                    attachment=b"%PDF-1.4 report"), sender=customer)
    number = int(re.search(r"\[#(\d+)\]", str(sink.wait_for(customer)[0].message["Subject"])).group(1))  # type: ignore[union-attr]
    shown = _show(desk, number)
    assert "messages (2):" in shown, shown
    assert re.search(rf"--- \S+ \d\d:\d\d CES?T  Customer  {re.escape(customer)}", shown), shown
    assert "      Larmet i trapphuset tjuter hela tiden sedan i morse." in shown
    assert "      attachment: rapport.pdf (application/pdf, 15 byte)" in shown
    assert "  Confirmation  support@telenta.example  (mail)" in shown, "the confirmation is labelled as one"

    desk.cli("ticket", "status", str(number), "resolved")
    desk.cli("ticket", "status", str(number), "closed")
    desk.send(_mail(customer, f"Re: [#{number}] Brandlarm tjuter",
                    f"Det tjuter igen.\n\n> Ärende {number}\n> Larmet i trapphuset\n"), sender=customer)
    follower = wait_until(lambda: desk.db.scalar("SELECT number FROM ticket WHERE linked_ticket_id = "
                                                 "(SELECT id FROM ticket WHERE number = :n)", n=number),
                          what="a new ticket linked to the closed one")
    assert f"  followed by  ticket {follower}: " in _show(desk, number)
    later = _show(desk, follower)
    assert f"  follows      ticket {number}: Brandlarm tjuter" in later
    assert "      Det tjuter igen." in later and "> Larmet i trapphuset" not in later, "the new words, not the quote"
