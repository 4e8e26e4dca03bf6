"""RFC 5965 feedback reports (ARF): the recipient who complained about our mail.

This module owns reading a `message/feedback-report` part: the complaining address from its
fields, else the To of the returned copy of our mail.
"""

from __future__ import annotations

from email.message import Message

from gateway.mail.bounces.fields import typed_address
from gateway.mail.bounces.report import FailedRecipient
from gateway.mail.headers import header_text


def feedback_recipients(blocks: list[dict[str, str]], original: Message | None) -> list[FailedRecipient]:
    """The complaining recipient (a soft, status-less failure), [] when the report names nobody."""
    fields: dict[str, str] = {}
    for block in blocks:
        for key, value in block.items():
            fields.setdefault(key, value)
    candidates = [fields.get(k, "") for k in ("removal-recipient", "original-rcpt-to")]
    if original is not None:
        candidates.append(header_text(original, "To"))
    kind = fields.get("feedback-type", "abuse").strip().lower() or "abuse"
    for value in candidates:
        address = typed_address(value)
        if address:
            return [FailedRecipient(address, "", "", False, f"feedback report: {kind}")]
    return []

