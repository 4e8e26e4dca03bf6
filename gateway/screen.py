"""SMTP-time screening: the `reject` rules, checked against a message before it is accepted.

This module owns the one routing decision taken while the client still waits at DATA: a `reject`
rule that matches is answered with 550 and the rule's reason, and nothing is stored. Only rules
can be checked here (no database yet), so follow-up counts as unknown, that is new.

Parsing and quote-stripping a message of up to the size limit costs CPU, so the SMTP handler
runs `RejectRules` in a worker thread, never on the event loop that feeds the systemd watchdog;
the daemon injects it into the handler, which does not import this module.
"""

from __future__ import annotations

from gateway.mail.limits import Limits, parse_bounded
from gateway.mail.quotes import new_text
from gateway.routing.router import route
from gateway.routing.runtime import Routing, RoutingState
from gateway.stages.context import base_mailbox
from gateway.stages.route import facts_for


class RejectRules:
    """The `reject` rules in force, as the SMTP handler calls them (`gateway.intake.smtp.Screen`)."""

    def __init__(self, routing: RoutingState) -> None:
        self.routing = routing

    def active(self) -> bool:
        """Cheap, on the loop: whether any rule in force could refuse a message at all."""
        return has_reject_rules(self.routing.current)

    def __call__(self, raw: bytes, rcpt_to: list[str], mail_from: str) -> str | None:
        """The refusal text for this message, or None to accept it (run off the loop: it parses)."""
        return smtp_rejection(self.routing.current, raw, rcpt_to, mail_from)


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
    """Whether any rule in force ends in `reject`."""
    return any(rule.terminal is not None and rule.terminal[0] == "reject" for rule in routing.rules)
