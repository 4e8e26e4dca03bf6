"""Turning raw bytes into a `ParsedMail` with the stdlib `email` package, repaired where mail is broken.

Nothing here may raise on bad input: a message the parser cannot read still becomes a
`ParsedMail` with what could be recovered and a list of defects, so that a later stage decides
whether to keep it on a ticket or quarantine it. The concepts live in their own modules:
header repair and decoding (`headers`), charsets (`charsets`), the sender (`addresses`), body
and attachments (`parts`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from email.message import Message

from gateway.mail import feed
from gateway.mail.addresses import Sender, addresses, find_sender
from gateway.mail.addresses import header_values as raw_values
from gateway.mail.charsets import decode
from gateway.mail.headers import decode_value, repair
from gateway.mail.parts import Attachment, Parts, read_parts

__all__ = ["Attachment", "ParsedMail", "parse", "raw_header", "raw_headers", "decode_text", "message_ids",
           "body_hash", "decode_payload", "normalise_line_endings"]

log = logging.getLogger("gateway.parse")
_MSGID = re.compile(r"<[^<>\s]+>")
_LOCAL_SEPARATORS = re.compile(r"[._-]+")
_BODY_SPLIT = re.compile(rb"\r?\n\r?\n")


@dataclass
class ParsedMail:
    """What later stages need from a message; every field is usable even for broken input."""

    message: Message
    from_addr: str  # the sender's address lowercased: what Postdesk compares and keys by
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
    parser: str = "stdlib"
    sender: Sender = field(default_factory=lambda: Sender(""))  # as written, and where it was found

    def header(self, name: str) -> str:
        return raw_header(self.message, name)

    @property
    def signs_as(self) -> str:
        """The name the sender may sign with: the display name, else the address's local part
        when it reads as a name ("anna.svensson@…" signs "Anna Svensson", "bob@…" "Bob")."""
        if self.from_name:
            return self.from_name
        words = _LOCAL_SEPARATORS.split(self.from_addr.partition("@")[0])
        return " ".join(words) if len(words) <= 3 and all(word.isalpha() for word in words) else ""


def raw_headers(message: Message, name: str) -> list[str]:
    """Every value of header `name`, unfolded and decoded; 8-bit bytes detected, not replaced."""
    return [decode_value(value) for value in raw_values(message, name)]


def raw_header(message: Message, name: str) -> str:
    found = raw_headers(message, name)
    return found[0] if found else ""


def decode_text(value: str) -> str:
    """Decode RFC 2047 encoded words and raw 8-bit header bytes; never raise."""
    return decode_value(value)


def message_ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


def body_hash(raw: bytes) -> str:
    """Hash of the body only, line endings folded: an MTA's retry adds Received headers, not body."""
    parts = _BODY_SPLIT.split(raw, maxsplit=1)
    body = parts[1] if len(parts) == 2 else raw
    return hashlib.sha256(body.replace(b"\r\n", b"\n").rstrip()).hexdigest()


def decode_payload(payload: bytes, charset: str | None) -> str:
    """Bytes to text without losing any (see `gateway.mail.charsets.decode`)."""
    return decode(payload, charset)


def normalise_line_endings(raw: bytes) -> bytes:
    """CR-only mail (old Macs, some gateways) reads as one long line; make it CRLF."""
    if b"\r" in raw and b"\n" not in raw:
        return raw.replace(b"\r", b"\r\n")
    if b"\r" in raw.replace(b"\r\n", b""):
        return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return raw


def _address_keys(message: Message, name: str, hint: str | None) -> list[str]:
    return [found.key for found in addresses(raw_values(message, name), hint=hint)]


def _header_hint(message: Message, body: str | None) -> str | None:
    """The charset of the raw 8-bit bytes in the headers: the body's (`body`), where the headers
    read as letters in it, else what all of those bytes together are detected as (more text, a
    better guess than one header's)."""
    from gateway.mail.charsets import codec, detect, reading

    try:
        values = [str(v) for _, v in message.raw_items()]
    except Exception:  # an oddly built message object
        return body
    eight_bit = [v.encode("utf-8", "surrogateescape") for v in values if any("\udc80" <= c <= "\udcff" for c in v)]
    joined = b"\n".join(eight_bit)
    if not eight_bit or _valid_utf8(joined):
        return body
    named = codec(body)
    if named:
        try:
            return reading(joined, named)
        except (UnicodeDecodeError, LookupError):
            pass  # the body's charset cannot even read them
    return detect(joined) or body


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parsed(message: Message, raw: bytes, parts: Parts, defects: list[str], envelope: str | None) -> ParsedMail:
    # Clients write raw header bytes in the charset of their body; without one, or where the
    # headers read as symbols in it, all of the headers' 8-bit bytes together are detected.
    hint = _header_hint(message, parts.charsets[0] if parts.charsets else None)
    sender = find_sender(message, envelope, hint=hint)
    subjects = raw_values(message, "Subject")
    return ParsedMail(
        message=message,
        from_addr=sender.key,
        from_name=sender.name,
        to=_address_keys(message, "To", hint),
        cc=_address_keys(message, "Cc", hint),
        subject=decode_value(subjects[0], hint=hint) if subjects else "",
        message_id=(message_ids(raw_header(message, "Message-ID")) or [""])[0],
        in_reply_to=message_ids(raw_header(message, "In-Reply-To")),
        references=message_ids(" ".join(raw_headers(message, "References"))),
        text_plain="\n".join(parts.plain),
        text_html="\n".join(parts.html),
        body_hash=body_hash(raw),
        attachments=parts.attachments,
        defects=defects,
        sender=sender,
    )


def parse(raw: bytes, *, envelope: str | None = None) -> ParsedMail:
    """Parse a message; `envelope` is the SMTP sender, the last resort for whose mail it is."""
    raw = normalise_line_endings(raw)
    fixed = repair(raw)
    message = feed.message_from_bytes(fixed)  # in chunks: half the memory (gateway.mail.feed)
    defects = [type(d).__name__ for d in message.defects]
    try:
        parts = read_parts(message, fixed)
    except Exception as exc:  # a bug reading parts must not lose the headers or the mail
        log.warning("could not read the parts of a message", exc_info=True)
        defects.append(f"parts: {type(exc).__name__}: {exc}")
        parts = Parts()
    return _parsed(message, raw, parts, defects, envelope)
