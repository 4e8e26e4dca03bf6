"""Reading a possibly broken message defensively: parts, parameters, text, and the notice text.

This module owns the walk over a bounce's MIME tree (bounded by `MAX_PARTS`, optionally not
into attached messages), the decoded text of a leaf part (bounded by `MAX_TEXT`), and the
notice a person would read: the first text part outside attached mails and files. Nothing here
raises on odd input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message

from gateway.mail.charsets import decode
from gateway.mail.headers import header_text

# A bounce with more parts than this is hostile or broken; the first ones say all we need.
MAX_PARTS = 200
# Only the start of a notice carries the MTA's boilerplate; scanning megabytes buys nothing.
MAX_TEXT = 64_000

# The report parts of RFC 3464 and RFC 6533: per-recipient fields, not MIME parts.
REPORT_PARTS = ("message/delivery-status", "message/global-delivery-status")
_NEWLINES = re.compile(r"\r\n?")


def normalise_line_endings(raw: bytes) -> bytes:
    """CRLF and bare CR to LF.

    The stdlib parser already splits headers on bare CR, but bodies keep it, and line-anchored
    patterns then see one long line; intake may call this before parsing to be sure.
    """
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def content_type(part: Message) -> str:
    """The part's content type; text/plain (RFC 2045's default) when unreadable."""
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def param(part: Message, name: str) -> str:
    """A Content-Type parameter, lower-cased; "" when absent or unreadable."""
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    if isinstance(value, tuple):  # RFC 2231 value: (charset, language, text)
        value = value[2]
    return str(value or "").strip().lower()


def child_parts(part: Message) -> list[Message]:
    """The sub-parts of a multipart or message/* part; [] for a leaf."""
    try:
        payload = part.get_payload()
    except Exception:
        return []
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def walk(msg: Message, *, into_messages: bool) -> Iterator[tuple[Message, Message | None]]:
    """(part, parent) pairs in document order, bounded; optionally not inside attached mails."""
    stack: list[tuple[Message, Message | None]] = [(msg, None)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, parent = stack.pop()
        seen += 1
        yield part, parent
        ctype = content_type(part)
        if ctype in ("message/rfc822", "message/global") and not into_messages:
            continue
        # message/delivery-status parses into header blocks; they are fields, not parts.
        if ctype in REPORT_PARTS:
            continue
        stack.extend((child, part) for child in reversed(child_parts(part)))


def part_text(part: Message) -> str:
    """Decoded text of a leaf part, line endings folded to LF; "" when it has none."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        try:
            raw = part.get_payload()
        except Exception:
            return ""
        text = raw if isinstance(raw, str) else ""
    else:
        # The same charset table and detection as every other body (gateway.mail.charsets).
        text = decode(payload[: MAX_TEXT * 4], param(part, "charset") or None)
    return _NEWLINES.sub("\n", text[:MAX_TEXT])


_TAGS = re.compile(r"<[^<>]{0,2000}>")
_BR = re.compile(r"(?i)<(?:br|/p|/div|/tr|/li)\b[^<>]{0,200}>")


def _html_to_text(html: str) -> str:
    return _TAGS.sub("", _BR.sub("\n", html)).replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">")


def notification_text(msg: Message) -> str:
    """The human-readable notice: the first text part outside attached messages and files.

    A multipart part whose boundary the parser could not find arrives as one text payload;
    broken MTAs produce those, so it counts as text too.
    """
    html = ""
    for part, _ in walk(msg, into_messages=False):
        ctype = content_type(part)
        if part.is_multipart() or not (ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")):
            continue
        # Attachments (Exim's header dumps, mailheaders.txt) are copies of the original mail.
        if part is not msg and "attachment" in header_text(part, "Content-Disposition").lower():
            continue
        if ctype == "text/html":
            html = html or _html_to_text(part_text(part))
            continue
        text = part_text(part)
        if text.strip():
            return text
    return html

