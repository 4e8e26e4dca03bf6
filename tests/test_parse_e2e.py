"""Real mail through a running daemon over SMTP, on SQLite and PostgreSQL: what gets stored.

Attachments keep their bytes exactly (PNG, CRLF text, an attached message as received); a
mutt-style bottom-posted reply stores the answer as the new text and the signature beside
it; Outlook's X-Auto-Response-Suppress opens a ticket without a confirmation; a mail whose
From has no address is the Reply-To's, not quarantined.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Daemon, Database, Sink, make_mail, unique_address, wait_until

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mail"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3


@pytest.fixture(scope="module")
def daemon(backend: Database, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    proc = Daemon(backend, sink, tmp_path_factory.mktemp("log") / "daemon.log").start()
    yield proc
    proc.stop()


def _as(raw: bytes, sender: str) -> bytes:
    """A fixture sent by another customer: their address and a fresh Message-ID."""
    raw = re.sub(rb"(?m)^From: .*$", f"From: Eva Nord <{sender}>".encode(), raw, count=1)
    return re.sub(rb"(?m)^Message-ID: .*$", f"Message-ID: <{uuid.uuid4().hex}@kund.example>".encode(), raw, count=1)


def _message(daemon: Daemon, sender: str, number: int = 1) -> dict[str, object]:
    rows = wait_until(lambda: (r := daemon.db.rows(
        "SELECT id, text, body, signature, trace FROM message WHERE author = :a AND direction = 'in' ORDER BY id",
        a=sender)) and len(r) >= number and r, what=f"message {number} from {sender}")
    row = rows[number - 1]
    return {"id": row[0], "text": row[1], "body": row[2], "signature": row[3], "trace": json.loads(row[4])}


def test_attachments_are_stored_byte_exact(daemon: Daemon) -> None:
    sender = unique_address()
    raw = _as((FIXTURES / "attachments_all.eml").read_bytes(), sender)
    daemon.send(raw, sender=sender)
    message = _message(daemon, sender)
    stored = {row[0]: (row[1], bytes(row[2]), row[3]) for row in daemon.db.rows(
        "SELECT ma.filename, a.sha256, a.data, ma.content_id FROM messageattachment ma "
        "JOIN attachment a ON a.id = ma.attachment_id WHERE ma.message_id = :m", m=message["id"])}
    start = raw.index(b"Content-Type: message/rfc822\r\n\r\n") + len(b"Content-Type: message/rfc822\r\n\r\n")
    attached = raw[start:raw.index(b"\r\n------=_Part_1--")]
    expected = {
        "image.png": PNG,
        "larmlogg.txt": "2026-03-03 02:00 ZON 4 LARM\r\n2026-03-03 02:01 ZON 4 ÅTERSTÄLLD".encode(),
        "rapport.html": b"<html><body><h1>Rapport</h1></body></html>",
        "debug.log": b"log line 1\nlog line 2\n",
        "fw.bin": b"firmware v3.4.1 dump\x00\x01\x02",
        "Larm i zon 4.eml": attached,
    }
    assert {name: data for name, (_, data, _) in stored.items()} == expected
    assert all(sha == hashlib.sha256(data).hexdigest() for sha, data, _ in stored.values())
    assert stored["image.png"][2] == "<panel@kund>"
    assert message["text"] == "Här är loggarna och en bild på panelen."


def test_bottom_posted_mutt_reply_stores_the_answer_and_the_signature(daemon: Daemon, sink: Sink) -> None:
    sender = unique_address()
    daemon.send(make_mail(sender=sender, subject="Grinden öppnar inte", body="Grinden mot parkeringen öppnar inte.\n"),
                sender=sender)
    confirmation = sink.wait_for(sender)[0].message
    quoted = "\n".join(f"> {line}".rstrip() for line in confirmation.get_body(("plain",)).get_content().splitlines())
    reply = make_mail(sender=sender, subject=f"Re: {confirmation['Subject']}",
                      headers={"In-Reply-To": confirmation["Message-ID"], "References": confirmation["Message-ID"],
                               "User-Agent": "Mutt/2.2.12"},
                      body=f"On Tue, Mar 03, 2026 at 10:12:00AM +0100, Telenta Support wrote:\n{quoted}\n\n"
                           "Den öppnar nu, men bara halvvägs.\n\n-- \nEva Nord\n070-123 45 67\n")
    daemon.send(reply, sender=sender)
    message = _message(daemon, sender, 2)
    assert message["text"] == "Den öppnar nu, men bara halvvägs."
    assert message["signature"] == "-- \nEva Nord\n070-123 45 67"
    assert quoted.splitlines()[2] in str(message["body"]), "the full body is kept, our quoted mail with it"


def test_auto_response_suppress_opens_a_ticket_without_a_confirmation(daemon: Daemon) -> None:
    sender = unique_address()
    daemon.send(make_mail(sender=sender, subject="Dörren vid entrén", headers={"X-Auto-Response-Suppress": "All"}),
                sender=sender)
    message = _message(daemon, sender)
    assert message["trace"]["kind"] == "customer" and message["trace"]["may_auto_answer"] is False
    assert daemon.db.scalar("SELECT count(*) FROM ticket t JOIN message m ON m.ticket_id = t.id WHERE m.author = :a",
                            a=sender) == 1
    # The confirmation would have been queued in the same transaction as the message.
    assert daemon.db.scalar("SELECT count(*) FROM outbox WHERE rcpt_to = :a", a=sender) == 0


def test_from_without_an_address_is_the_reply_to_and_not_quarantined(daemon: Daemon, sink: Sink) -> None:
    sender = unique_address()
    raw = (FIXTURES / "sender_reply_to_only.eml").read_bytes().replace(b"lena.ek@kund.example", sender.encode())
    daemon.send(re.sub(rb"(?m)^Message-ID: .*$", f"Message-ID: <{uuid.uuid4().hex}@kund.example>".encode(), raw),
                sender="bounces@newsletter-tool.example")
    message = _message(daemon, sender)
    assert message["trace"]["sender_from"] == "Reply-To"
    assert sink.wait_for(sender), "the confirmation goes to the recovered sender"
