"""One hostile set of mails, sent to a daemon on SQLite and to one on PostgreSQL, stored alike.

NUL characters in text, subject and name, a display name of 300 characters, an address longer
than SMTP allows, Message-IDs and subjects longer than a header line, an attachment name of
700 characters: what SQLite keeps PostgreSQL must keep too, and what one quarantines the other
quarantines for the same reason. Our answers to these mails keep every line within RFC 5322's
998 characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _require_backend
from tests.harness import Daemon, Database, Sink, crlf, wait_until

LONG_ID = "<" + "x" * 1200 + "@kund.example>"
WIDE_ID = "<" + "å" * 400 + "@kund.example>"


def _mail(n: int, *, from_header: str = "", subject: str = "Hostile", message_id: str = "", body: bytes = b"Hej.",
          extra: str = "", content: bytes = b"") -> tuple[str, bytes]:
    sender = f"hostile-{n}@kund.example"
    head = (f"From: {from_header or sender}\nTo: support@telenta.example\nSubject: {subject}\n"
            f"Message-ID: {message_id or f'<hostile-{n}@kund.example>'}\n{extra}MIME-Version: 1.0\n")
    if content:
        return sender, crlf(head.encode() + content)
    return sender, crlf(head.encode() + b"Content-Type: text/plain; charset=utf-8\n\n" + body + b"\n")


def hostile_set() -> list[tuple[str, bytes]]:
    attachment = (b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nSee file.\n'
                  b'--b\nContent-Type: application/pdf; name="' + b"n" * 700 + b'.pdf"\n'
                  b'Content-Disposition: attachment; filename="' + b"n" * 700 + b'.pdf"\n'
                  b"Content-ID: <" + b"c" * 600 + b">\n\nPDF\n--b--\n")
    html = (b'Content-Type: text/html; charset=utf-8\n\n<p>Hej\x00 d\xc3\xa4r</p>\n')
    return [
        _mail(1, body=b"Larmet\x00 tjuter"),
        _mail(2, subject="Larm\x00 igen"),
        _mail(3, from_header="Anna " + "Andersson " * 30 + "<hostile-3@kund.example>"),
        _mail(4, from_header="<" + "a" * 60 + "@" + "d" * 270 + ".example>"),
        _mail(5, message_id=LONG_ID),
        _mail(6, subject="Re: " + "y" * 3000),
        _mail(7, extra=f"In-Reply-To: {'<' + 'w' * 1100 + '@k>'}\nReferences: <a@b> {'<' + 'r' * 1500 + '@k>'}\n"),
        _mail(8, content=attachment),
        _mail(9, from_header="Bo\x00 Ek <hostile-9@kund.example>"),
        _mail(10, message_id=WIDE_ID),
        _mail(11, content=html),
        _mail(12, subject="Re: Hostile", extra=f"In-Reply-To: {LONG_ID}\n"),
    ]


def _snapshot(db: Database) -> dict[str, Any]:
    """What was stored per sender, without ids or times (which differ between runs)."""
    shot: dict[str, Any] = {}
    for row in db.rows("SELECT mail_from, state, note FROM inbound ORDER BY id"):
        shot[row[0]] = {"state": row[1], "note": row[2] if row[1] == "quarantined" else ""}
    for row in db.rows(
            "SELECT m.author, c.email, c.name, t.subject, m.message_id, m.subject, m.text, m.html FROM message m "
            "JOIN ticket t ON t.id = m.ticket_id JOIN customer c ON c.id = t.customer_id WHERE m.direction = 'in'"):
        shot.setdefault(row[0], {})["stored"] = list(row[1:])
    for row in db.rows(
            "SELECT m.author, a.filename, a.content_type, a.content_id FROM messageattachment a "
            "JOIN message m ON m.id = a.message_id"):
        shot.setdefault(row[0], {}).setdefault("attachments", []).append(list(row[1:]))
    return shot


def _through_daemon(kind: str, db: Database, sink: Sink, log: Path) -> dict[str, Any]:
    """The hostile set sent to a daemon on `db`, once everything is handled and answered."""
    daemon = Daemon(db, sink, log, env_extra={"POSTDESK_WEB__ENABLED": "false", "POSTDESK_METRICS__LISTEN": ""}).start()
    try:
        mails = hostile_set()
        with daemon.smtp() as client:
            for sender, raw in mails:
                client.sendmail(sender, ["support@telenta.example"], raw)
        wait_until(lambda: db.scalar("SELECT count(*) FROM inbound WHERE state != 'queued'") == len(mails),
                   what=f"every hostile mail handled on {kind}")
        wait_until(lambda: db.scalar("SELECT count(*) FROM outbox WHERE state = 'pending'") == 0,
                   what=f"every answer sent on {kind}")
        return _snapshot(db)
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Sink]]:
    """The hostile set through a daemon on each store; the snapshots by store, and the sink."""
    sink = Sink().start()
    shots: dict[str, Any] = {}
    try:
        for kind in ("sqlite", "postgresql"):
            _require_backend(kind)
            db = Database(kind, tmp_path_factory.mktemp(kind))
            try:
                shots[kind] = _through_daemon(kind, db, sink, tmp_path_factory.mktemp("log") / f"{kind}.log")
            finally:
                db.drop()
        yield shots, sink
    finally:
        sink.stop()


def test_the_hostile_set_is_stored_alike_on_sqlite_and_postgresql(runs: tuple[dict[str, Any], Sink]) -> None:
    shots, _ = runs
    sqlite, postgresql = shots["sqlite"], shots["postgresql"]
    assert set(sqlite) == set(postgresql)
    for sender in sqlite:
        assert sqlite[sender] == postgresql[sender], sender
    # An address longer than SMTP allows is never stored as a customer's: the parser or the check
    # refuses it (the envelope sender answers for it, or the mail waits in quarantine).
    assert all(len(shot.get("stored", [""])[0]) <= 254 for shot in sqlite.values())
    # The values themselves: NUL gone, the name cut to its column, the long id a stable stand-in.
    assert sqlite["hostile-1@kund.example"]["stored"][5] == "Larmet tjuter"
    assert sqlite["hostile-2@kund.example"]["stored"][4] == "Larm igen"
    assert 0 < len(sqlite["hostile-3@kund.example"]["stored"][1]) <= 200
    assert sqlite["hostile-5@kund.example"]["stored"][3].endswith("@shortened.invalid>")
    # The stand-in is stable: a reply naming the long id threads onto its ticket.
    assert sqlite["hostile-12@kund.example"]["stored"][0] == "hostile-5@kund.example"
    assert len(sqlite["hostile-8@kund.example"]["attachments"][0][0]) <= 500


def test_no_line_of_our_answers_is_longer_than_998(runs: tuple[dict[str, Any], Sink]) -> None:
    _, sink = runs
    answered = {rcpt for message in sink.messages for rcpt in message.rcpt_tos}
    assert {"hostile-5@kund.example", "hostile-6@kund.example", "hostile-7@kund.example"} <= answered
    for message in sink.messages:
        longest = max(len(line) for line in message.raw.split(b"\r\n"))
        assert longest <= 998, (message.rcpt_tos, longest)
        # Folding kept the subject readable and short; the customer's words are cut, not lost.
        assert len(str(message.message["Subject"])) <= 260
