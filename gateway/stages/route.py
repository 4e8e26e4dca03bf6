"""The `route` stage: for each of our mailboxes the mail is for, what the rules decide.

Only a customer's mail is routed: department, topic, priority, SLA, assignee, fields and the
action (deliver, drop, quarantine, reject). Mail nothing routed goes to the triage
department, so that it reaches someone. A quarantine or reject rule sends the item to
quarantine (`Reject`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.copies import recipients
from gateway.mail.parse import ParsedMail
from gateway.routing.facts import Facts
from gateway.routing.router import route as route_facts
from gateway.routing.staff import triage_department
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context, Reject, base_mailbox


def facts_for(mail: ParsedMail, mailbox: str, *, sender: str, text: str, followup: bool) -> Facts:
    """What routing may look at, for one of our mailboxes."""
    headers: dict[str, list[str]] = {}
    for name, value in mail.message.items():
        headers.setdefault(name.lower(), []).append(str(value))
    return Facts(mailbox=mailbox, from_addr=sender, to=mail.to, cc=mail.cc, subject=mail.subject, body=text,
                 headers=headers, has_attachment=bool(mail.attachments), followup=followup)


def our_mailboxes(ctx: Context, services: Services) -> list[str]:
    """All our mailboxes this mail is for, whatever the delivery (`gateway.copies`)."""
    return recipients([base_mailbox(r) for r in ctx.rcpt_to],
                      [base_mailbox(a) for a in ctx.mail.to + ctx.mail.cc], services.config.mailboxes)


def route(ctx: Context, services: Services, conn: Connection) -> None:
    ctx.mailboxes = our_mailboxes(ctx, services)
    if ctx.kind != "customer":
        return
    routing = services.routing.current
    triage = triage_department(services.config, routing.directory)
    for box in ctx.mailboxes:
        facts = facts_for(ctx.mail, box, sender=ctx.sender, text=ctx.text, followup=bool(ctx.threaded))
        decision = ctx.decisions[box] = route_facts(routing.rules, routing.directory, facts)
        if decision.department is None and triage is not None:
            # Nothing routed it: the triage department's people sort it, so it reaches someone.
            decision.department, decision.department_from = triage, "triage"
    for box, decision in ctx.decisions.items():
        if decision.action in ("quarantine", "reject"):
            raise Reject(f"rule {decision.matched[-1]!r} ({box}): {decision.action_reason or decision.action}")


STAGE = ItemStage("route", route)
