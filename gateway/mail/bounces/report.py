"""What reading a bounce yields: the failed recipients, the report, and the reading with its evidence.

This module owns the result types of `gateway.mail.bounces` and the caps every reader keeps to.
`BounceReport` is the parse result; the stored row of a bounce is `gateway.db.models.Bounce`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Real bounces list a handful of recipients; thousands would only be an attack on our time.
MAX_RECIPIENTS = 500


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a bounce reports as failed (or delayed)."""

    address: str  # lower-cased addr-spec
    status: str  # RFC 3463 enhanced status ("5.1.1"); inferred from the text if the MTA gave none
    smtp_code: str  # SMTP reply code ("550"), "" if none
    hard: bool  # the address itself is permanently undeliverable (unknown user or domain, null MX)
    diagnostic: str  # short text, may be ""


@dataclass(frozen=True)
class BounceReport:
    """What a bounce says: who failed, and which of our messages it was about."""

    recipients: list[FailedRecipient]
    original_message_id: str | None  # in "<...>" form
    report_type: str  # "delivery-status", "feedback-report", or "heuristic"


@dataclass(frozen=True)
class BounceReading:
    """The full answer of `read_bounce`: the report (None if not a bounce), why, and the notice text.

    `by_content` says whether the message's content alone makes it a bounce; when it does not,
    `bounce` is set only for a reading the caller presumed to be one (its envelope says so).
    """

    bounce: BounceReport | None
    evidence: list[str] = field(default_factory=list)
    text: str = ""
    by_content: bool = False
