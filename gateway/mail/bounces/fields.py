"""RFC 822-style field blocks, as RFC 3464 delivery-status and RFC 5965 feedback reports carry them.

This module owns reading "Name: value" blocks from a report part (parsed into header blocks by
the stdlib, or left as text) and from text where an MTA pasted them, and the address of a
typed field ("rfc822; user@example.org").
"""

from __future__ import annotations

import re
from email.message import Message

from gateway.mail.bounces.mime import child_parts, part_text
from gateway.mail.bounces.status import ADDR

_FOLD = re.compile(r"\r?\n[ \t]+|\r[ \t]+")
_FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]*(.*)$")


def field_blocks(text: str) -> list[dict[str, str]]:
    """"Name: value" blocks separated by blank lines (DSN fields written as text)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[0] in " \t" and last:
            current[last] += " " + line.strip()
            continue
        match = _FIELD_LINE.match(line)
        if match:
            last = match.group(1).lower()
            current.setdefault(last, match.group(2).strip())
        else:
            last = ""
    if current:
        blocks.append(current)
    return blocks


def part_fields(part: Message) -> list[dict[str, str]]:
    """Field blocks of a message/delivery-status or message/feedback-report part."""
    children = child_parts(part)
    if not children:
        return field_blocks(part_text(part))
    blocks: list[dict[str, str]] = []
    for child in children:
        block: dict[str, str] = {}
        try:
            items = list(child.raw_items())
        except Exception:
            continue
        for key, value in items:
            block.setdefault(str(key).strip().lower(), _FOLD.sub(" ", str(value)).strip())
        blocks.append(block)
    return blocks


def typed_address(value: str) -> str:
    """The address of "rfc822; user@example.org" (or of a bare "<user@example.org>")."""
    match = ADDR.search(value.split(";", 1)[1] if ";" in value else value)
    return match.group(0).lower().strip(".") if match else ""

