"""What can be done to a ticket: assign, change status, reply, note, rate, in the caller's transaction.

The CLI (`postdesk ticket …`), agents' commands by mail, the pipeline and the scheduler all come
through here, so each action writes its event log entry and adds the events the notification
matrix turns into mail (`gateway.tickets.events`), the same way whoever does it; the caller
hands them to the notify step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from sqlalchemy import Connection, insert, select, update

from gateway.clock import utcnow
from gateway.db.rows import TicketRow
from gateway.db.tables import EVENT, RATING, TICKET
from gateway.i18n.catalogues import N_
from gateway.mail.parse import Attachment
from gateway.tickets import notices, store
from gateway.tickets.events import Events, StaffNotice, ThirdPartyQuestion, TicketEvent
from gateway.tickets.lifecycle import Status, check_transition
from gateway.tickets.rows import TicketKey
from gateway.values import Priority

# Which notification a move into a status sends (a move back from resolved is a reopening).
STATUS_EVENTS = {
    Status.WAITING_CUSTOMER: "info_requested",
    Status.WAITING_THIRD_PARTY: "waiting_third_party",
    Status.RESOLVED: "resolved",
    Status.CLOSED: "closed",
}


# The same words routing rules may set.
PRIORITIES: tuple[str, ...] = get_args(Priority)


class ActionError(ValueError):
    """An action that cannot be done, with a reason for the person who asked."""


def by_number(conn: Connection, number: int) -> TicketRow:
    row = conn.execute(select(TICKET).where(TICKET.c.number == number)).first()
    if row is None:
        raise ActionError(f"no ticket {number}")
    return row


def _fresh(conn: Connection, ticket: TicketRow) -> TicketRow:
    return store.load(conn, ticket.id)


def assign(conn: Connection, events: Events, ticket: TicketRow, agent: str, *, actor: str) -> TicketRow:
    """Give the ticket to `agent`; a new ticket moves to in_progress (the assign clock stops)."""
    agent = agent.lower()
    if events.config.staff and events.config.agent(agent) is None:
        known = ", ".join(a.address for a in events.config.staff)
        raise ActionError(f"{agent} is not an agent (agents: {known})")
    conn.execute(update(TICKET).where(TICKET.c.id == ticket.id).values(assignee=agent, updated_at=utcnow()))
    store.add_event(conn, ticket.id, "assigned", actor=actor, detail=agent)
    ticket = _fresh(conn, ticket)
    if ticket.status == Status.NEW.value:
        # The Romanian seed: the customer is told when an agent has taken the request.
        ticket = set_status(conn, events, ticket, Status.IN_PROGRESS, actor=actor, why=f"assigned to {agent}")
    if agent != actor.lower() and events.config.agent(agent) is not None:
        events.add(StaffNotice(ticket, agent, "assigned_to_you", notices.words(
            N_("Ticket %(number)s was given to you by %(actor)s."), number=ticket.number, actor=actor)))
    return ticket


def set_priority(conn: Connection, ticket: TicketRow, priority: str, *, actor: str) -> TicketRow:
    if priority not in PRIORITIES:
        raise ActionError(f"unknown priority {priority!r} (priorities: {', '.join(PRIORITIES)})")
    conn.execute(update(TICKET).where(TICKET.c.id == ticket.id).values(priority=priority, updated_at=utcnow()))
    store.add_event(conn, ticket.id, "priority", actor=actor, detail=f"{ticket.priority} -> {priority}")
    return _fresh(conn, ticket)


def set_department(conn: Connection, events: Events, ticket: TicketRow, department: str, *, actor: str) -> TicketRow:
    """Move the ticket to another team; its agents hear of it as of a new ticket."""
    conn.execute(update(TICKET).where(TICKET.c.id == ticket.id).values(department=department, updated_at=utcnow()))
    store.add_event(conn, ticket.id, "department", actor=actor, detail=f"{ticket.department or '-'} -> {department}")
    ticket = _fresh(conn, ticket)
    for agent in events.config.agents_of(department):
        if agent.address != actor.lower():
            events.add(StaffNotice(ticket, agent.address, "new_in_your_department", notices.words(
                N_("Ticket %(number)s was moved to %(department)s by %(actor)s."), number=ticket.number,
                department=department, actor=actor)))
    return ticket


def ask_third_party(conn: Connection, events: Events, ticket: TicketRow, address: str, question: str, *,
                    actor: str) -> TicketRow:
    """Mail `question` to a third party; the ticket waits on them until they answer."""
    if not question.strip():
        raise ActionError("no question: write it below the command")
    if ticket.status == Status.CLOSED.value:
        raise ActionError(f"ticket {ticket.number} is closed")
    store.add_participant(conn, ticket.id, address.lower(), "third_party")
    events.add(ThirdPartyQuestion(ticket, address.lower(), question, actor))
    store.add_event(conn, ticket.id, "third_party_asked", actor=actor, detail=f"{address}: {question[:300]}")
    if ticket.status != Status.WAITING_THIRD_PARTY.value:
        ticket = set_status(conn, events, ticket, Status.WAITING_THIRD_PARTY, actor=actor, why=f"asked {address}")
    return ticket


def set_status(conn: Connection, events: Events, ticket: TicketRow, target: Status, *, actor: str, why: str = "",
               text: str = "", notify: bool = True) -> TicketRow:
    """Move the ticket, write the event, and send what the matrix says for the move."""
    current = Status(ticket.status)
    try:
        check_transition(current, target)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    store.change_status(conn, ticket, target, actor=actor, why=why or text[:200])
    ticket = _fresh(conn, ticket)
    if target is Status.WAITING_CUSTOMER and text:
        _public_message(conn, ticket, text, actor, kind="info_request")
    if notify:
        event = "reopened" if current is Status.RESOLVED and target is Status.IN_PROGRESS else \
            STATUS_EVENTS.get(target, "status_changed")
        events.add(TicketEvent(ticket, event, text=text, actor=actor, human=bool(text)))
    return ticket


def reply(conn: Connection, events: Events, ticket: TicketRow, text: str, *, actor: str,
          files: Sequence[Attachment] = ()) -> TicketRow:
    """A public answer to the customer, with `files` attached; the first one stops the first-response clock."""
    if not text.strip():
        raise ActionError("empty reply")
    if ticket.status == Status.CLOSED.value:
        raise ActionError(f"ticket {ticket.number} is closed")
    store.flush_events(conn, [ticket.id])  # a first response earlier in this batch counts
    first = conn.execute(select(EVENT.c.id).where(EVENT.c.ticket_id == ticket.id,
                                                  EVENT.c.kind == "first_response")).first() is None
    row = _public_message(conn, ticket, text, actor, kind="agent")
    store.store_attachments(conn, row, files, events.config.attachments.max_size)
    if first:
        store.add_event(conn, ticket.id, "first_response", actor=actor, detail="first reply to the customer")
    # The first agent to answer a new ticket takes it (and the assign clock stops).
    is_agent = events.config.agent(actor) is not None or not events.config.staff
    if ticket.status == Status.NEW.value and not ticket.assignee and is_agent:
        assign(conn, events, ticket, actor, actor=actor)
    ticket = _fresh(conn, ticket)
    events.add(TicketEvent(ticket, "agent_reply", text=text, actor=actor, human=True, files=files))
    return ticket


def note(conn: Connection, ticket: TicketKey, text: str, *, actor: str) -> None:
    """An internal note: kept on the ticket, never sent to the customer."""
    if not text.strip():
        raise ActionError("empty note")
    store.add_message(conn, ticket.id, {"direction": "note", "kind": "note", "author": actor, "text": text,
                                        "body": text, "visibility": "internal"})
    store.add_event(conn, ticket.id, "note", actor=actor, detail=text[:500])


def rate(conn: Connection, ticket: TicketRow, score: int, comment: str, *, actor: str) -> bool:
    """Record the customer's 1-5 rating for the agent who resolved; False if already rated."""
    if not 1 <= score <= 5:
        raise ActionError("a rating is a number from 1 to 5")
    if conn.execute(select(RATING.c.id).where(RATING.c.ticket_id == ticket.id)).first() is not None:
        return False
    store.flush_events(conn, [ticket.id])  # a resolution earlier in this batch counts
    resolver = conn.execute(
        select(EVENT.c.actor).where(EVENT.c.ticket_id == ticket.id, EVENT.c.kind == "status", EVENT.c.status == "resolved")
        .order_by(EVENT.c.at.desc()).limit(1)).scalar()
    conn.execute(insert(RATING), {"ticket_id": ticket.id, "agent": ticket.assignee or resolver or "", "score": score,
                                  "comment": comment[:4000], "created_at": utcnow()})
    store.add_event(conn, ticket.id, "rating", actor=actor, detail=f"{score}/5 {comment[:200]}".strip())
    return True


def _public_message(conn: Connection, ticket: TicketRow, text: str, actor: str, *, kind: str) -> int:
    return store.add_message(conn, ticket.id, {"direction": "out", "kind": kind, "author": actor, "text": text, "body": text,
                                        "visibility": "public", "mailbox": ticket.mailbox})
