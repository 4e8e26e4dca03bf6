"""How much work one message may cost: caps checked before and after parsing, and what is kept.

A message that exceeds a cap is never refused or quarantined for it: it is still stored and
threaded, from what fits under the caps, and the heavy part is kept as an attachment with a
note saying what was left out and why. Two checks:

- `admit` looks at the raw bytes before any parser does (a few linear scans): too many MIME
  parts, too many multipart containers (which bounds nesting) or too many lines (each line costs
  the stdlib parser an object, so a mail of short lines costs many times its size) cut the
  message where the cap is reached; the whole original is kept as `original.eml`.
- `bound` looks at the parsed text: a text body over `text_bytes` is shortened (the full text
  kept as `message.txt`), an HTML body over `html_bytes` is read with `plain_extract` instead of
  a parser (kept as `message.html`), and HTML nested deeper than `html_depth` is flattened.

DKIM signatures are capped here too (`distinct_first`): `gateway.agents.proof` verifies at most
`max_dkim_signatures` distinct ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.mail.htmltext import flatten_nesting, plain_extract
from gateway.mail.parse import Attachment, ParsedMail, parse

_HEADER_END = re.compile(rb"\r?\n\r?\n")
# A boundary delimiter line, or a multipart container's declaration of its boundary.
_DELIMITER = re.compile(rb"^--[^\r\n]", re.M)
_CONTAINER = re.compile(rb"^content-type:[ \t]*multipart/", re.M | re.I)


@dataclass(frozen=True)
class Limits:
    """The caps; `gateway.config.LimitsConfig` carries the configured values."""

    max_parts: int = 500
    max_containers: int = 50
    max_lines: int = 400_000
    text_bytes: int = 1024 * 1024
    html_bytes: int = 2 * 1024 * 1024
    html_depth: int = 100
    max_dkim_signatures: int = 5


@dataclass
class Admitted:
    """The bytes to parse (all of `raw`, or the part under the caps) and what was cut."""

    raw: bytes
    notes: list[str]
    original: Attachment | None = None


def parse_bounded(raw: bytes, limits: Limits, *, envelope: str | None = None) -> tuple[ParsedMail, list[str]]:
    """`parse` within the caps: the mail and the notes on what was cut (empty: nothing was)."""
    admitted = admit(raw, limits)
    mail = parse(admitted.raw, envelope=envelope)
    # A cut message is kept whole as original.eml: copies of its parts would add nothing.
    notes = admitted.notes + bound(mail, limits, keep=admitted.original is None)
    if admitted.original is not None:
        mail.attachments.append(admitted.original)
    return mail, notes


def admit(raw: bytes, limits: Limits) -> Admitted:
    """`raw`, or its beginning up to the first cap it exceeds, with the original kept aside."""
    header = _HEADER_END.search(raw)
    body_start = header.end() if header else len(raw)
    cuts = [
        _nth_match(_DELIMITER, raw, body_start, limits.max_parts, "MIME parts", (b"--",)),
        _nth_match(_CONTAINER, raw, 0, limits.max_containers, "multipart containers", (b"c", b"C")),
        _nth_line(raw, body_start, limits.max_lines),
    ]
    found = [cut for cut in cuts if cut is not None]
    if not found:
        return Admitted(raw, [])
    at, why = min(found)
    note = (f"message cut at byte {at} of {len(raw)}: more than {why}; the whole message is kept "
            f"as the attachment original.eml")
    return Admitted(raw[:at], [note], Attachment("original.eml", "message/rfc822", raw))


def _nth_match(pattern: re.Pattern[bytes], raw: bytes, start: int, cap: int, what: str,
               firsts: tuple[bytes, ...]) -> tuple[int, str] | None:
    """Where the match after the `cap`-th one starts; `firsts`: the bytes a matching line starts with."""
    # Counting lines that start like a match is a C loop; the pattern scan is only needed when
    # there could be more matches than the cap (one more: a match at the very start).
    if sum(raw.count(b"\n" + first, max(start - 1, 0)) for first in firsts) + 1 <= cap:
        return None
    for count, match in enumerate(pattern.finditer(raw, start), 1):
        if count > cap:
            return match.start(), f"{cap} {what}"
    return None


def _nth_line(raw: bytes, start: int, cap: int) -> tuple[int, str] | None:
    if raw.count(b"\n", start) <= cap:
        return None
    at = start
    for _ in range(cap):
        at = raw.index(b"\n", at) + 1
    return at, f"{cap} lines"


def bound(mail: ParsedMail, limits: Limits, *, keep: bool = True) -> list[str]:
    """Shorten what is too heavy to read in `mail` (in place); returns the notes for the ticket.

    With `keep`, what is shortened is added as an attachment (message.txt, message.html);
    without, the caller keeps the whole message (original.eml).
    """
    notes = []
    if len(mail.text_plain) > limits.text_bytes:
        if keep:
            mail.attachments.append(Attachment("message.txt", "text/plain; charset=utf-8", mail.text_plain.encode()))
        notes.append(_shorten(mail, limits, "message.txt" if keep else "original.eml"))
    html = mail.text_html
    if len(html) > limits.html_bytes:
        kept = "message.html" if keep else "original.eml"
        if keep:
            mail.attachments.append(Attachment("message.html", "text/html; charset=utf-8", html.encode()))
        mail.text_html = ""
        if not mail.text_plain:
            mail.text_plain = plain_extract(html)
            if len(mail.text_plain) > limits.text_bytes:
                notes.append(_shorten(mail, limits, kept))
        notes.append(f"HTML body of {len(html)} characters (over {limits.html_bytes}) shown as plain text; "
                     f"it is kept in {kept}")
    elif html:
        mail.text_html, deepest = flatten_nesting(html, limits.html_depth)
        if deepest > limits.html_depth:
            notes.append(f"HTML nested {deepest} levels deep shown with its markup cut at level {limits.html_depth}")
    return notes


def _shorten(mail: ParsedMail, limits: Limits, kept: str) -> str:
    cut = mail.text_plain.rfind("\n", 0, limits.text_bytes)
    mail.text_plain = mail.text_plain[: cut if cut > 0 else limits.text_bytes] + "\n[…]"
    return f"text shortened to {limits.text_bytes} characters; the full text is kept in {kept}"


def distinct_first(values: list[bytes], cap: int) -> list[int]:
    """Indexes of the first `cap` distinct values, whitespace ignored (50 copies of one are one).

    For DKIM signatures: each one verified costs a hash of the whole body, and a copied
    signature proves nothing its first copy does not.
    """
    first: dict[bytes, int] = {}
    for index, value in enumerate(values):
        first.setdefault(b"".join(value.split()), index)
    return sorted(first.values())[:cap]
