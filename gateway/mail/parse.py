"""Turning raw bytes into a `ParsedMail`: mail-parser first, the stdlib `email` package as fallback.

Nothing here may raise on bad input: a message that neither parser can read still becomes a
`ParsedMail` with what could be recovered and a list of defects, so that a later stage decides
whether to keep it on a ticket or quarantine it.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr

import mailparser

log = logging.getLogger("gateway.parse")
_MSGID = re.compile(r"<[^<>\s]+>")
_BODY_SPLIT = re.compile(rb"\r?\n\r?\n")


@dataclass
class Attachment:
    filename: str
    content_type: str
    payload: bytes
    content_id: str | None = None


@dataclass
class ParsedMail:
    """What later stages need from a message; every field is usable even for broken input."""

    message: Message
    from_addr: str
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    message_id: str
    in_reply_to: list[str]
    references: list[str]
    text_plain: str
    text_html: str
    body_hash: str
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    parser: str = "mail-parser"

    def header(self, name: str) -> str:
        value = self.message.get(name)
        return "" if value is None else decode_text(str(value))


def decode_text(value: str) -> str:
    """Decode RFC 2047 encoded words; leave the text as it is when they are malformed."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (UnicodeError, LookupError, ValueError, TypeError):
        return value


def message_ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


def body_hash(raw: bytes) -> str:
    """Hash of the body only, line endings folded: an MTA's retry adds Received headers, not body."""
    parts = _BODY_SPLIT.split(raw, maxsplit=1)
    body = parts[1] if len(parts) == 2 else raw
    return hashlib.sha256(body.replace(b"\r\n", b"\n").rstrip()).hexdigest()


def _addresses(message: Message, name: str) -> list[str]:
    values = [decode_text(str(v)) for v in message.get_all(name, [])]
    return [addr.lower() for _, addr in getaddresses(values) if "@" in addr]


def _stdlib_parts(message: Message) -> tuple[str, str, list[Attachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        ctype = part.get_content_type()
        payload = part.get_payload(decode=True) or b""
        if filename or part.get_content_disposition() == "attachment":
            cid = part.get("Content-ID")
            attachments.append(Attachment(decode_text(filename or "attachment"), ctype, payload, cid))
        elif ctype in ("text/plain", "text/html"):
            charset = part.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, errors="replace")
            except LookupError:
                text = payload.decode("utf-8", errors="replace")
            (plain if ctype == "text/plain" else html).append(text)
    return "\n".join(plain), "\n".join(html), attachments


def _base(message: Message, raw: bytes, subject: str, defects: list[str], parser: str) -> ParsedMail:
    name, addr = parseaddr(decode_text(str(message.get("From", ""))))
    return ParsedMail(
        message=message,
        from_addr=addr.lower() if "@" in addr else "",
        from_name=name,
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        subject=subject,
        message_id=(message_ids(str(message.get("Message-ID", ""))) or [""])[0],
        in_reply_to=message_ids(str(message.get("In-Reply-To", ""))),
        references=message_ids(str(message.get("References", ""))),
        text_plain="",
        text_html="",
        body_hash=body_hash(raw),
        defects=defects,
        parser=parser,
    )


def parse(raw: bytes) -> ParsedMail:
    """Parse with mail-parser; fall back to the stdlib parser for what mail-parser cannot read."""
    try:
        mp = mailparser.parse_from_bytes(raw)
        parsed = _base(mp.message, raw, decode_text(mp.subject or ""), [str(d) for d in mp.defects], "mail-parser")
        parsed.text_plain = "\n".join(mp.text_plain)
        parsed.text_html = "\n".join(mp.text_html)
        _, _, parsed.attachments = _stdlib_parts(mp.message)
        return parsed
    except Exception as exc:  # mail-parser raises many kinds on broken input; all mean "fall back".
        log.info("mail-parser could not read the message (%s); using the stdlib parser", exc)
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        defects = [type(d).__name__ for d in message.defects] + [f"mail-parser: {exc}"]
        parsed = _base(message, raw, decode_text(str(message.get("Subject", ""))), defects, "stdlib")
        parsed.text_plain, parsed.text_html, parsed.attachments = _stdlib_parts(message)
        return parsed
