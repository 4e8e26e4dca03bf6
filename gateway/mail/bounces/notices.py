"""MTA text notices: failed recipients of a bounce that carries no machine-readable report.

This module owns reading the plain-text notices of qmail, Exim, Sendmail, older Exchange, Lotus
Domino, OpenSMTPD, Yahoo and the like: where the notice ends and the copy of our mail begins,
which addresses it names as failed and the lines about each (`recipient_notes` also serves
RFC 3464 reports whose fields say too little).
"""

from __future__ import annotations

import re
from email.message import Message

from gateway.mail.bounces.report import MAX_RECIPIENTS, FailedRecipient
from gateway.mail.bounces.signs import from_address
from gateway.mail.bounces.status import ADDR, ADDR_SPEC, first_code, first_status, settle, short
from gateway.mail.headers import header_text, header_values

# Where the notice ends and the copy of our message begins.
_CUT = re.compile(
    r"""(?imx)^[ \t]*(?:[-=*#]{2,}[ \t]*)?(?:
        (?:(?:this|here|included|below|below\ this\ line)\ is\ a\ )?copy\ of\ (?:the|your)\ (?:original\ )?message
      | (?:the\ )?header\ of\ the\ original
      | below\ is\ a\ copy
    )[^\n]{0,60}$
    | ^[ \t]*(?:[-=*#]{2,}[ \t]*)?(?:
        (?:the\ )?original\ (?:message|mail)(?:\ info|\ follows|\ headers?)?
      | message\ headers?\ follow
      | returned\ message | undelivered\ message | bounced\ e-?mail
    )[ \t]*[:.]?[ \t]*[-=*#]*[ \t]*$
    | ^(?:Received|Return-Path|DKIM-Signature|ARC-Seal|X-Google-Smtp-Source)[ \t]*:""",
)
_LINE_ADDRESS = re.compile(rf"(?m)^[ \t]*<?(?P<addr>{ADDR_SPEC})>?(?=[\s:,;\[(.]|$)")
_PHRASE_ADDRESS = re.compile(
    rf"(?i)\b(?:to|for|recipients?|address(?:es)?|attempts|list)\b[ \t]*:?[ \t]*<?(?P<addr>{ADDR_SPEC})"
)
# List and bounce plumbing addresses are never the recipient that failed.
_PLUMBING = re.compile(r"(?i)^(?:mailer-daemon|owner-[^@]*|[^@]*-(?:ctl|request|owner|admin|bounces?))@")
_ORIGINAL_TO = re.compile(r"(?im)^To:[ \t]*(.+)$")


def split_notice(text: str) -> tuple[str, str]:
    match = _CUT.search(text)
    return (text[: match.start()], text[match.start():]) if match else (text, "")


def _line_start(text: str, position: int) -> int:
    return text.rfind("\n", 0, position) + 1


def _notice_addresses(notice: str, exclude: set[str]) -> list[tuple[str, int]]:
    """(address, start of its line) of the failed recipients the notice names, in order.

    Addresses that open a line are what MTAs list ("<user@example.org>: 550 ..."); only when
    there are none, addresses after "to"/"recipient"/... ("rejected recipient <user@...>").
    """
    found: dict[str, int] = {}
    for pattern in (_LINE_ADDRESS, _PHRASE_ADDRESS):
        for match in pattern.finditer(notice):
            address = match.group("addr").lower().rstrip(".")
            if address not in exclude and not _PLUMBING.match(address):
                found.setdefault(address, _line_start(notice, match.start()))
        if found:
            break
    return sorted(found.items(), key=lambda item: item[1])[:MAX_RECIPIENTS]


def recipient_notes(text: str) -> dict[str, str]:
    """Address -> the lines of the notice about it ("" -> the whole notice), for thin DSN fields."""
    notice, _ = split_notice(text)
    named = _notice_addresses(notice, set())
    notes = {"": notice[:2000]}
    for index, (address, start) in enumerate(named):
        end = named[index + 1][1] if index + 1 < len(named) else len(notice)
        notes[address] = notice[start:end][:2000]
    return notes


def _text_recipients(notice: str, named: list[tuple[str, int]]) -> list[FailedRecipient]:
    """One recipient per named address; its lines are its diagnostic, the text above is context."""
    preamble = notice[: named[0][1]] if named else notice
    recipients: list[FailedRecipient] = []
    for index, (address, start) in enumerate(named):
        end = named[index + 1][1] if index + 1 < len(named) else len(notice)
        block = notice[start:end]
        first, _, rest = block.partition("\n")
        # "<user@example.org>:" alone on its line: the reason is on the lines below.
        diagnostic = short(rest if len(first.strip()) <= len(address) + 4 else block) or short(preamble)
        # With a single recipient, a reply quoted above its address is about it too.
        code = first_code(block) or (first_code(preamble) if len(named) == 1 else "")
        status, hard = settle(first_status(block), code, diagnostic, preamble)
        recipients.append(FailedRecipient(address, status, code, hard, diagnostic))
    return recipients


def _failed_header(msg: Message, notice: str) -> list[tuple[str, int]]:
    """Exim's and Gmail's X-Failed-Recipients, placed at their lines in the notice."""
    values = header_values(msg, "X-Failed-Recipients")
    listed = [m.group(0).lower() for value in values for m in ADDR.finditer(value)]
    lowered = notice.lower()
    placed = [(a, _line_start(lowered, max(lowered.find(a), 0))) for a in dict.fromkeys(listed)]
    return sorted(placed, key=lambda item: item[1])[:MAX_RECIPIENTS]


def notice_recipients(msg: Message, text: str, original: Message | None) -> list[FailedRecipient]:
    """Failed recipients of a notice without report fields: the header, the text, else our To."""
    notice, rest = split_notice(text)
    _, own = from_address(msg)
    exclude = {own} if own else set()
    named = _failed_header(msg, notice) or _notice_addresses(notice, exclude)
    if not named:
        # The notice names nobody (Verizon's MMS gateway): the mail we sent names them.
        to = header_text(original, "To") if original is not None else ""
        match = _ORIGINAL_TO.search(rest) if not to else None
        value = to or (match.group(1) if match else "")
        addresses = dict.fromkeys(m.group(0).lower() for m in ADDR.finditer(value))
        named = [(a, len(notice)) for a in addresses if a not in exclude][:MAX_RECIPIENTS]
    return _text_recipients(notice, named)

