"""The whole reading of a bounce: the best source of recipients, the evidence, the verdict.

This module owns `read_bounce`: it picks the source the message offers (an RFC 5965 feedback
report, RFC 3464 report parts, DSN fields pasted as text, else the MTA's text notice), weighs
the evidence of `gateway.mail.bounces.signs`, and never raises.
"""

from __future__ import annotations

import logging
from email.message import Message

from gateway.mail.bounces.delivery_status import dsn_recipients, unique_recipients
from gateway.mail.bounces.feedback import feedback_recipients
from gateway.mail.bounces.fields import field_blocks, part_fields
from gateway.mail.bounces.mime import REPORT_PARTS, content_type, notification_text, param, walk
from gateway.mail.bounces.notices import notice_recipients, recipient_notes
from gateway.mail.bounces.original import find_original_message_id, original_copy
from gateway.mail.bounces.report import BounceReading, BounceReport, FailedRecipient
from gateway.mail.bounces.signs import structural_signs, wording_signs
from gateway.mail.bounces.status import STATUS

log = logging.getLogger("gateway.classify")


def _report_parts(msg: Message) -> tuple[list[tuple[Message, Message | None]], list[Message]]:
    """(delivery-status parts with their parents, feedback-report parts); outside attachments first."""
    status: list[tuple[Message, Message | None]] = []
    feedback: list[Message] = []
    for into in (False, True):
        for part, parent in walk(msg, into_messages=into):
            ctype = content_type(part)
            if ctype in REPORT_PARTS and all(part is not p for p, _ in status):
                status.append((part, parent))
            elif ctype == "message/feedback-report" and all(part is not p for p in feedback):
                feedback.append(part)
    return status, feedback


def _recipients(msg: Message, text: str) -> tuple[list[FailedRecipient], str, Message | None]:
    """(recipients, report type, original message) from the best source the message offers."""
    status_parts, feedback_parts = _report_parts(msg)
    top_report = param(msg, "report-type") if content_type(msg) == "multipart/report" else ""
    if feedback_parts and (top_report == "feedback-report" or not status_parts):
        original = original_copy(msg, None)
        return feedback_recipients(part_fields(feedback_parts[0]), original), "feedback-report", original
    anchor = status_parts[0][1] if status_parts else None
    original = original_copy(msg, anchor)
    notes = recipient_notes(text)
    recipients = unique_recipients([r for part, _ in status_parts for r in dsn_recipients(part_fields(part), notes)])
    report = "delivery-status" if status_parts or top_report == "delivery-status" else "heuristic"
    if not recipients:
        # Some MTAs paste the DSN fields into the text part instead of a report part.
        recipients = dsn_recipients(field_blocks(text), notes)
    if not recipients:
        recipients = notice_recipients(msg, text, original)
    return recipients, report, original


def read_bounce(msg: Message, *, presumed: bool = False) -> BounceReading:
    """Read a message as a bounce; `presumed` when the envelope already says it is one.

    Never raises: a failure inside is logged and reads as "not a bounce" (or as a bounce without
    details, when presumed), so the classifier still decides on headers.
    """
    try:
        return _read(msg, presumed)
    except Exception:  # A parser bug must not stop the pipeline; classify falls back to headers.
        log.warning("could not read the message as a bounce", exc_info=True)
        return BounceReading(BounceReport([], None, "heuristic") if presumed else None)


def _read(msg: Message, presumed: bool) -> BounceReading:
    text = notification_text(msg)
    recipients, report, original = _recipients(msg, text)
    strong, weak = wording_signs(msg, text)
    strong = structural_signs(msg) + strong
    if report == "heuristic" and any(STATUS.search(r.diagnostic) for r in recipients):
        weak.append("failed recipient with an enhanced status code")
    # Two weak signs together (a postmaster sender and "could not be delivered") make a bounce.
    by_content = bool(strong) or len(weak) >= 2
    if not (presumed or by_content):
        return BounceReading(None, weak, text)
    bounce = BounceReport(recipients, find_original_message_id(original, msg, text), report)
    return BounceReading(bounce, strong + weak, text, by_content)


def parse_bounce(msg: Message) -> BounceReport | None:
    """The bounce this message is, or None if its content does not make it one."""
    return read_bounce(msg).bounce
