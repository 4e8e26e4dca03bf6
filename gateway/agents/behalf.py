"""Tickets an agent opens for a customer: `#customer Name <address>`, or a forwarded mail.

A phone call or a walk-in is typed up and sent to support@ with `#customer` on the first line;
a customer's mail that reached an agent directly is forwarded to support@ inline (Gmail's
"---------- Forwarded message ---------", Outlook's "-----Original Message-----" under a
"Fw:" subject, Apple's "Begin forwarded message:") or as a message/rfc822 attachment. Either
way the ticket belongs to the customer, who gets the confirmation. Only an agent's mail with
proof gets here (`gateway.agents.proof`); the pipeline handles anyone else's as their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from gateway.mail.parse import ParsedMail, parse
from gateway.mail.quotes import new_text, visible_text

_CUSTOMER = re.compile(r"#customer[ \t]+(.+)", re.I)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:(?:fwd?|fw|vb|wg|tr|rv|i)\s*:\s*)+", re.I)
_MARKER = re.compile(
    r"-{2,}\s*(?:Forwarded message|Original Message|Vidarebefordrat meddelande|Ursprungligt meddelande"
    r"|Mesaj redirecționat|Mesaj original|Weitergeleitete Nachricht)\s*-{2,}|Begin forwarded message:",
    re.I)
# Markers that say "forwarded" by themselves; "Original Message" also starts Outlook's replies.
_FORWARD_ONLY = re.compile(r"forward|vidarebefordrat|redirecționat|weitergeleitet", re.I)
_FIELD = re.compile(r"\s*\*?(From|Från|De la|De|Von|Subject|Ämne|Subiect|Betreff)\*?\s*:\s*(.*)", re.I)
_FROM_WORDS = {"from", "från", "de la", "de", "von"}


@dataclass(frozen=True)
class OnBehalf:
    """The customer a ticket is for, and their words, as the agent passed them on."""

    address: str
    name: str
    text: str
    subject: str
    message_id: str | None  # the customer's own Message-ID, when the forward kept it
    how: str  # "#customer" or "forwarded"
    intro: str = ""  # what the agent wrote above a forward (kept as an internal note)


def _address(value: str) -> tuple[str, str]:
    name, address = parseaddr(value)
    address = address.lower()
    return (name, address) if "@" in address and not address.startswith("@") else ("", "")


def on_behalf(text: str, subject: str) -> OnBehalf | None:
    """`#customer Anna Berg <anna@kund.example>` on the first line of the agent's text."""
    lines = text.strip().split("\n")
    match = _CUSTOMER.fullmatch(lines[0].strip()) if lines else None
    if match is None:
        return None
    name, address = _address(match.group(1))
    if not address:
        return None
    rest = "\n".join(lines[1:]).strip()
    return OnBehalf(address, name, rest, subject, None, "#customer")


def forwarded(mail: ParsedMail, body: str) -> OnBehalf | None:
    """The original sender and text of a forwarded customer mail, or None."""
    for attachment in mail.attachments:
        if attachment.content_type == "message/rfc822":
            inner = parse(attachment.payload)
            if inner.from_addr:
                text = new_text(inner.text_plain or None, inner.text_html or None)
                return OnBehalf(inner.from_addr, inner.from_name, text, inner.subject or _subject(mail.subject),
                                inner.message_id or None, "forwarded", body.strip())
    lines = body.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        marker = _MARKER.search(line[:200])
        if marker is None:
            continue
        if not (_FORWARD_ONLY.search(marker.group(0)) or _FORWARD_SUBJECT.match(mail.subject)):
            return None
        return _inline(lines, index, mail.subject)
    return None


def _inline(lines: list[str], marker: int, subject: str) -> OnBehalf | None:
    index = marker + 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    sender = ("", "")
    original_subject = ""
    while index < len(lines) and lines[index].strip():
        field = _FIELD.match(lines[index])
        if field and field.group(1).lower() in _FROM_WORDS and not sender[1]:
            sender = _address(field.group(2))
        elif field:
            original_subject = field.group(2).strip()
        index += 1
    if not sender[1]:
        return None
    text = visible_text("\n".join(line.removeprefix("> ") for line in lines[index:]))
    intro = "\n".join(lines[:marker]).strip()
    return OnBehalf(sender[1], sender[0], text, original_subject or _subject(subject), None, "forwarded", intro)


def _subject(subject: str) -> str:
    return _FORWARD_SUBJECT.sub("", subject).strip()
