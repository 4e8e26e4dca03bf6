"""The copy of our message a bounce returns, and its Message-ID: how a bounce finds its ticket.

This module owns finding the returned mail (a message/rfc822 part next to the report, the
innermost copy in a bounce of a bounce, or a text/rfc822-headers part) and, failing that, a
Message-ID line quoted anywhere in the bounce.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.parser import HeaderParser

from gateway.mail.bounces.fields import part_fields
from gateway.mail.bounces.mime import REPORT_PARTS, child_parts, content_type, part_text, walk
from gateway.mail.bounces.notices import split_notice
from gateway.mail.headers import header_text

_HEADER_PARTS = ("text/rfc822-headers", "text/rfc822-header", "message/global-headers")
_COPY_PARTS = ("message/rfc822", "message/global", "message/partial", *_HEADER_PARTS)
_MSGID_LINE = re.compile(r"(?im)^[ \t]*Message-ID[ \t]*:[ \t]*(?:\n[ \t]+)?(<?[^\s<>@]{1,200}@[^\s<>]{1,200}>?)")
_BRACKETED = re.compile(r"<([^<>\s]{1,400})>")


def _message_id(value: str) -> str | None:
    match = _BRACKETED.search(value)
    if match:
        return f"<{match.group(1)}>"
    token = next((t for t in value.split() if "@" in t), "")
    return f"<{token.strip('<>')}>" if token else None


def _attached_message(part: Message) -> Message | None:
    """The original mail carried by a message/rfc822 or rfc822-headers part."""
    ctype = content_type(part)
    if ctype in _HEADER_PARTS:
        try:
            return HeaderParser().parsestr(part_text(part).lstrip("\n"))
        except Exception:
            return None
    children = child_parts(part)
    return children[0] if children else None


def original_copy(msg: Message, anchor: Message | None) -> Message | None:
    """The returned copy of our mail: next to the report part if there is one, else the innermost."""
    candidates: list[tuple[Message, Message | None]] = []
    for part, parent in walk(msg, into_messages=True):
        if part is not msg and content_type(part) in _COPY_PARTS:
            candidates.append((part, parent))
    for part, parent in candidates:
        if anchor is not None and parent is anchor:
            return _attached_message(part)
    # A bounce of a bounce (a gateway wrapping the MTA's DSN) nests reports; the last copy is ours.
    for part, _ in reversed(candidates):
        attached = _attached_message(part)
        if attached is not None and content_type(attached) != "multipart/report":
            return attached
    return None


def _copies(msg: Message, notice_text: str) -> Iterator[str]:
    """Texts that may quote our mail's headers, the likeliest first."""
    yield split_notice(notice_text)[1]
    for part, _ in walk(msg, into_messages=True):
        ctype = content_type(part)
        if ctype in REPORT_PARTS:
            # A lost boundary can leave the returned headers inside the report part's fields.
            yield "\n".join(f"Message-ID: {b['message-id']}" for b in part_fields(part) if "message-id" in b)
        elif not part.is_multipart() and (ctype.startswith("text/") or ctype.startswith("multipart/")):
            # A part without MIME headers of its own gets the copied mail's headers as its headers.
            own = header_text(part, "Message-ID") if part is not msg else ""
            text = part_text(part)
            if own or text != notice_text:
                yield f"Message-ID: {own}\n{text}" if own else text
    yield notice_text


def find_original_message_id(original: Message | None, msg: Message, text: str) -> str | None:
    if original is not None:
        found = _message_id(header_text(original, "Message-ID"))
        if found:
            return found
    for copy in _copies(msg, text):
        match = _MSGID_LINE.search(copy)
        if match:
            return _message_id(match.group(1))
    return None

