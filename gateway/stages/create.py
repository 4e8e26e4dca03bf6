"""The `create` stage: each opening becomes a ticket, with its customer and the mail on it.

It decides the ticket's language (the customer's, or detected for a new customer), its routing
columns and its link to an old ticket, registers the customer on first mail, and stores the
mail. A ticket an agent opened for a customer says so, with the agent's introduction as a
note. What was opened is left in `ctx.opened` for the acknowledge and announce stages.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from gateway.db.rows import CustomerRow
from gateway.i18n.detect import detect
from gateway.routing.people import new_customer_language
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context, Opened, Opening
from gateway.stages.customers import opening_text
from gateway.stages.messages import store_mail
from gateway.tickets import actions, store
from gateway.tickets.store import TicketRef


def create(ctx: Context, services: Services, conn: Connection) -> None:
    for opening in ctx.openings:
        opened = _open(ctx, services, conn, opening)
        ctx.opened.append(opened)
        if opening.linked_number is not None:
            ctx.notes.append(f"new ticket {opened.ticket.number} linked to {opening.linked_number}: {opening.why}")


def _open(ctx: Context, services: Services, conn: Connection, opening: Opening) -> Opened:
    directory = services.routing.current.directory
    org = directory.organisation_for(ctx.sender)
    customer = store.customer(conn, ctx.sender, ctx.sender_name, org.name if org else None)
    subject = " ".join(ctx.subject.split()) or "(no subject)"
    language = customer.language or new_customer_language(services.config, directory, org,
                                                          opening.decision.department, opening_text(ctx),
                                                          lambda text: _detected(conn, text))[0]
    decision = opening.decision
    why = (f"mail to {opening.mailbox}; rules {', '.join(decision.matched) or 'none'}; "
           f"department from {decision.department_from or 'nothing'}")
    ref = store.create_ticket(conn, first_number=services.config.tickets.first_number, customer_id=customer.id,
                              subject=subject, mailbox=opening.mailbox, actor=ctx.sender,
                              values=_columns(opening, customer, language), why=why)
    store.add_participant(conn, ref.id, customer.email, "customer")
    dropped = store_mail(ctx, services, conn, ref.id, opening.mailbox, first=True)
    ctx.ticket_numbers.append(ref.number)
    if ctx.on_behalf is not None:
        _opened_by_agent(ctx, conn, ref)
    return Opened(opening, ref, customer.email, customer.name, language, dropped)


def _detected(conn: Connection, text: str) -> str | None:
    """The language of a new customer's words: as the batch detected it, else now."""
    known, language = store.detected_language(conn, text)
    return language if known else detect(text)


def _columns(opening: Opening, customer: CustomerRow, language: str) -> dict[str, Any]:
    """The new ticket's routing columns, as routing decided them."""
    decision = opening.decision
    return {
        "department": decision.department, "topic": decision.topic, "priority": decision.priority or "normal",
        "sla_plan": decision.sla, "assignee": decision.assignee, "organisation": customer.organisation,
        "tags": ",".join(decision.tags), "fields": json.dumps(decision.fields, ensure_ascii=False),
        "missing_fields": ",".join(decision.missing_fields),
        "language": language,
        "linked_ticket_id": opening.linked_id,
    }


def _opened_by_agent(ctx: Context, conn: Connection, ref: TicketRef) -> None:
    assert ctx.on_behalf is not None
    agent = ctx.mail.from_addr
    store.add_event(conn, ref.id, "on_behalf", actor=agent, detail=f"opened for {ctx.sender} ({ctx.on_behalf.how})")
    if ctx.on_behalf.intro:
        actions.note(conn, ref, ctx.on_behalf.intro, actor=agent)
    ctx.notes.append(f"opened by agent {agent} for {ctx.sender} ({ctx.on_behalf.how})")


STAGE = ItemStage("create", create)
