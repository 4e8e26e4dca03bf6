"""RFC 3464 delivery status notifications: the failed recipients of per-recipient field blocks.

This module owns turning `message/delivery-status` blocks (Final-Recipient, Action, Status,
Diagnostic-Code) into `FailedRecipient`s, with the notice text as a second source when the
fields are thin; delivered, relayed and expanded recipients are not failures.
"""

from __future__ import annotations

import re

from gateway.mail.bounces.fields import typed_address
from gateway.mail.bounces.report import MAX_RECIPIENTS, FailedRecipient
from gateway.mail.bounces.status import first_code, first_status, settle, short

_DIAG_TYPE = re.compile(r"(?s)^\s*([A-Za-z][\w-]{0,40})\s*;\s*(.*)$")


def _dsn_status(status: str, diagnostic: str, action: str) -> str:
    """Status field, unless the remote server's own code in the diagnostic says more.

    Reporting MTAs often write a generic "5.0.0", or a "4.x.x" on a failure they gave up on,
    while the diagnostic quotes the remote server's specific code ("550 5.7.1 ...").
    """
    specific = first_status(diagnostic)
    if not specific:
        return status
    if not status or specific[0] == status[0] or (action == "failed" and specific[0] == "5"):
        return specific
    return status


def _dsn_recipient(block: dict[str, str], notes: dict[str, str], only: bool) -> FailedRecipient | None:
    """The failure one per-recipient block reports; None for a success or a block without address."""
    action = block.get("action", "").strip().lower().split(" ")[0]
    # Success reports (delivered, relayed, expanded) list recipients that did not fail.
    if action in ("delivered", "relayed", "expanded") or (not action and block.get("status", "").lstrip()[:1] == "2"):
        return None
    # Original-Recipient is the address as we sent it; Final-Recipient may be an alias target.
    final = typed_address(block.get("final-recipient", ""))
    address = typed_address(block.get("original-recipient", "")) or final
    if not address:
        return None
    typed = _DIAG_TYPE.match(block.get("diagnostic-code", ""))
    diag_type, diagnostic = typed.groups() if typed else ("", block.get("diagnostic-code", ""))
    local_program = diag_type.strip().lower() == "x-unix"
    status = _dsn_status(first_status(block.get("status", "")), diagnostic, action)
    if action == "delayed" and not status:
        status = "4.0.0"
    # A local delivery program (procmail, a script) failed after the MTA accepted the address:
    # a mail system error (RFC 3463 X.3.x), not a statement about the address.
    if local_program and status.endswith(".0.0"):
        status = status[0] + ".3.0"
    # The notice text often says more than the fields ("unknown user" in a Sendmail transcript).
    # A notice about one recipient explains that recipient even when it names them differently.
    note = notes.get(address) or notes.get(final) or (notes[""] if only else "")
    code = first_code(diagnostic) or first_code(note)
    status, hard = settle(status, code, diagnostic, note)
    if local_program:
        hard = False
    return FailedRecipient(address, status, code, hard, short(diagnostic or note))


def dsn_recipients(blocks: list[dict[str, str]], notes: dict[str, str]) -> list[FailedRecipient]:
    """The failed recipients of a report's field blocks; `notes` are the notice's lines per address."""
    blocks = [b for b in blocks if {"final-recipient", "original-recipient"} & set(b)][:MAX_RECIPIENTS]
    found = (_dsn_recipient(block, notes, len(blocks) == 1) for block in blocks)
    return unique_recipients([r for r in found if r is not None])


def unique_recipients(recipients: list[FailedRecipient]) -> list[FailedRecipient]:
    """The first report of each address (a DSN may repeat one per attempt or per alias)."""
    seen: set[str] = set()
    kept: list[FailedRecipient] = []
    for recipient in recipients:
        if recipient.address not in seen:
            seen.add(recipient.address)
            kept.append(recipient)
    return kept[:MAX_RECIPIENTS]
