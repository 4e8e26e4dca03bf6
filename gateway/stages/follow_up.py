"""The `follow_up` stage: a customer's reply, or automatic mail, on the tickets it threads to.

For each ticket it decides: reopen it, wake it (waiting on the customer), record a rating of
its resolution ("5 - thanks"), take the fields it was missing, or, when the ticket is closed
or was resolved too long ago, open a new ticket linked to it instead (an `Opening` for the
create stage). Auto-replies and bounces are recorded on the ticket and change nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Connection

from gateway.clock import utcnow
from gateway.db.rows import TicketRow
from gateway.routing.facts import Decision
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context, Opening
from gateway.stages.messages import store_mail
from gateway.tickets import actions, store
from gateway.tickets.events import TicketEvent
from gateway.tickets.lifecycle import Status

# A reply to a resolved ticket whose first line is a rating: "4", "5 - great", "3: ok".
# The number must stand alone on its line or be followed by punctuation: "5 computers are
# broken again" is news, not a rating.
RATING_LINE = re.compile(r"\A\s*([1-5])[ \t]*(?:/[ \t]*5)?[ \t]*(?:[-–:.,!]|(?=\n)|\Z)\s*(.*)", re.S)


def follow_up(ctx: Context, services: Services, conn: Connection) -> None:
    if not ctx.threaded or ctx.kind == "loop":
        return
    for ticket_id in ctx.threaded:
        ticket = store.load(conn, ticket_id)
        why = _not_reopened(ctx, services, ticket)
        if why:
            decision = Decision(department=ticket.department, topic=ticket.topic, priority=ticket.priority)
            ctx.openings.append(Opening(ticket.mailbox, decision, ticket.id, ticket.number, why))
        else:
            _append(ctx, services, conn, ticket)
    ctx.outcome = ctx.outcome or f"appended ({ctx.kind})"
    # A new ticket linked to an old one is still to be opened, confirmed and announced.
    ctx.settled = not ctx.openings


def _not_reopened(ctx: Context, services: Services, ticket: TicketRow) -> str:
    """Why a customer's reply opens a new ticket instead of reopening this one ("": it does not)."""
    if ctx.kind != "customer":
        return ""
    if ticket.status == Status.CLOSED.value:
        return "the ticket is closed"
    window = timedelta(days=services.config.lifecycle.reopen_days)
    if ticket.status == Status.RESOLVED.value and ticket.resolved_at is not None \
            and utcnow() - ticket.resolved_at > window:
        return f"resolved more than {window.days} days ago"
    return ""


def _append(ctx: Context, services: Services, conn: Connection, ticket: TicketRow) -> None:
    dropped = "\n".join(store_mail(ctx, services, conn, ticket.id, ticket.mailbox))
    ctx.ticket_numbers.append(ticket.number)
    if ctx.kind != "customer":
        return  # auto-replies and bounces are recorded, never change the status
    ticket = _answer(ctx, services, conn, ticket, dropped)
    missing = [m for m in ticket.missing_fields.split(",") if m]
    if missing:
        given = services.routing.current.directory.parse_fields(ctx.text, missing)
        if given:
            still = store.update_fields(conn, ticket, given, missing)
            store.add_event(conn, ticket.id, "fields", actor=ctx.sender,
                            detail=f"supplied {', '.join(sorted(given))}; missing {', '.join(still) or 'nothing'}")


def _answer(ctx: Context, services: Services, conn: Connection, ticket: TicketRow, dropped: str) -> TicketRow:
    """What the customer's reply does to the ticket's status; returns the ticket as it is now."""
    events = ctx.acting(services.config)
    rating = RATING_LINE.match(ctx.text)
    if ticket.status == Status.RESOLVED.value and rating:
        # "5 - thanks, all good": a rating of the resolution, not a reason to reopen.
        actions.rate(conn, ticket, int(rating.group(1)), rating.group(2).strip(), actor=ctx.sender)
        ctx.notes.append(f"rating {rating.group(1)} recorded")
        return ticket
    if ticket.status == Status.RESOLVED.value:
        # The customer knows they replied: only a reopening is announced (to them and the agent).
        return actions.set_status(conn, events, ticket, Status.IN_PROGRESS, actor=ctx.sender,
                                  why="customer reopened by replying", notify=True)
    if ticket.status == Status.WAITING_CUSTOMER.value:
        ticket = actions.set_status(conn, events, ticket, Status.IN_PROGRESS, actor=ctx.sender,
                                    why="customer replied", notify=False)
    events.add(TicketEvent(ticket, "customer_replied", text=ctx.text, actor=ctx.sender, staff_note=dropped))
    return ticket


STAGE = ItemStage("follow_up", follow_up)
