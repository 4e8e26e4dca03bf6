"""SMTP-time reject rules (moving to `gateway.screen`; the stages are in `gateway.stages`).

What is left of the old pipeline module: the check a `reject` rule makes at SMTP DATA time.
"""

from __future__ import annotations

from gateway.mail.limits import Limits, parse_bounded
from gateway.mail.quotes import new_text
from gateway.routing.rules import route
from gateway.routing.runtime import Routing
from gateway.stages.context import base_mailbox
from gateway.stages.route import facts_for


def smtp_rejection(routing: Routing, raw: bytes, rcpt_to: list[str], mail_from: str) -> str | None:
    """The text of a `reject` rule that matches, checked at SMTP DATA time; None to accept.

    Only rules can be checked here (no database yet): follow-up is unknown and counts as new.
    """
    mail, _ = parse_bounded(raw, Limits())
    sender = mail.from_addr or mail_from.lower()
    text = new_text(mail.text_plain or None, mail.text_html or None)
    for box in dict.fromkeys(base_mailbox(r) for r in rcpt_to):
        decision = route(routing.rules, routing.directory, facts_for(mail, box, sender=sender, text=text, followup=False))
        if decision.action == "reject":
            return decision.action_reason or "Message refused by policy"
    return None


def has_reject_rules(routing: Routing) -> bool:
    return any(rule.terminal is not None and rule.terminal[0] == "reject" for rule in routing.rules)
