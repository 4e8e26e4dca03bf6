"""What the web history reads from the database, and the read-only engine it reads through.

This module owns the queries behind the pages: one page of a ticket list, one ticket with its
messages, attachments and events, one attachment's bytes. They take a `Viewer` only to build the
list condition; whether a loaded ticket may be shown is `gateway.web.access`'s decision.

On SQLite, page views read through `gateway.db.engine.sqlite_reader`, so that they never queue
behind intake for the writers' lock; on PostgreSQL the daemon's engine is used as it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, UnaryExpression, select, union

from gateway.db.engine import is_sqlite, sqlite_reader
from gateway.db.tables import (
    ATTACHMENT,
    CUSTOMER,
    EVENT,
    MESSAGE,
    MESSAGE_ATTACHMENT,
    OUTBOX,
    RATING,
    TICKET,
    AnyRow,
)
from gateway.tickets.lifecycle import DONE
from gateway.web.access import Viewer, ticket_clause, ticket_parts

PAGE_SIZE = 25
# The status filter's extra choices beside the single statuses.
ALL, OPEN = "all", "open"


def read_engine(url: str, writer: Engine) -> Engine:
    """An engine for page views: `writer` itself on PostgreSQL, a lock-free reader on SQLite."""
    return sqlite_reader(url) if is_sqlite(writer) else writer


@dataclass(frozen=True)
class ListPage:
    rows: Sequence[AnyRow]
    page: int
    has_next: bool


_LIST_COLUMNS = (
    TICKET.c.id, TICKET.c.number, TICKET.c.subject, TICKET.c.status, TICKET.c.department,
    TICKET.c.organisation, TICKET.c.created_at, TICKET.c.updated_at, CUSTOMER.c.email.label("customer_email"),
    CUSTOMER.c.name.label("customer_name"),
)


def _newest(part: ColumnElement[bool], status: str, limit: int,
            order: tuple[UnaryExpression[Any], ...]) -> Select[tuple[int]]:
    query = select(TICKET.c.id).where(part).order_by(*order).limit(limit)
    if status != ALL:
        query = query.where(status_condition(status))
    # SQLite takes ORDER BY and LIMIT inside a UNION only in a subquery of its own.
    return select(query.subquery().c.id)


def status_condition(status: str) -> ColumnElement[bool]:
    if status == OPEN:
        return TICKET.c.status.not_in(sorted(DONE))
    return TICKET.c.status == status


def ticket_list(conn: Connection, viewer: Viewer, *, status: str, page: int, size: int = PAGE_SIZE) -> ListPage:
    """One page of the tickets `viewer` may see, most recently active first."""
    newest_first = (TICKET.c.updated_at.desc(), TICKET.c.id.desc())
    # One row more than shown tells whether there is a next page without counting them all.
    wanted = size + 1
    offset = (page - 1) * size
    condition = ticket_clause(viewer, TICKET)
    parts = [] if viewer.everything or viewer.scope is not None else ticket_parts(viewer, TICKET)
    if len(parts) > 1:
        # An agent sees their departments OR their assigned tickets: as one OR the database
        # sorts every match (60 ms at 100,000 tickets, bench/web.py). The newest `offset +
        # wanted` of each part, read in index order, hold the page; their union is small.
        picks = [_newest(part, status, offset + wanted, newest_first) for part in parts]
        condition = TICKET.c.id.in_(select(union(*picks).subquery().c.id))
    query = (
        select(*_LIST_COLUMNS)
        .join(CUSTOMER, CUSTOMER.c.id == TICKET.c.customer_id)
        .where(condition)
        .order_by(*newest_first)
        .limit(wanted)
        .offset(offset)
    )
    if status != ALL:
        query = query.where(status_condition(status))
    rows = conn.execute(query).all()
    return ListPage(rows[:size], page, len(rows) > size)


_TICKET = (select(TICKET, CUSTOMER.c.email.label("customer_email"), CUSTOMER.c.name.label("customer_name"))
           .join(CUSTOMER, CUSTOMER.c.id == TICKET.c.customer_id))


def ticket_by_number(conn: Connection, number: int) -> AnyRow | None:
    return conn.execute(_TICKET.where(TICKET.c.number == number)).first()


def ticket_by_id(conn: Connection, ticket_id: int) -> AnyRow | None:
    return conn.execute(_TICKET.where(TICKET.c.id == ticket_id)).first()


def linked_from(conn: Connection, ticket_id: int) -> list[AnyRow]:
    """Tickets opened as followers of this one (a reply to it after it was closed)."""
    return list(conn.execute(_TICKET.where(TICKET.c.linked_ticket_id == ticket_id).order_by(TICKET.c.number)).all())


def messages(conn: Connection, ticket_id: int, *, internal: bool) -> list[AnyRow]:
    """The ticket's messages in the order they came; internal notes only when asked for."""
    query = select(MESSAGE).where(MESSAGE.c.ticket_id == ticket_id).order_by(MESSAGE.c.created_at, MESSAGE.c.id)
    if not internal:
        query = query.where(MESSAGE.c.visibility == "public")
    return list(conn.execute(query).all())


def attachments(conn: Connection, message_ids: Sequence[int]) -> dict[int, list[AnyRow]]:
    """Attachment names, types, Content-IDs and sizes per message id (not the bytes)."""
    if not message_ids:
        return {}
    query = (
        select(MESSAGE_ATTACHMENT.c.id, MESSAGE_ATTACHMENT.c.message_id, MESSAGE_ATTACHMENT.c.filename,
                MESSAGE_ATTACHMENT.c.content_type, MESSAGE_ATTACHMENT.c.content_id, ATTACHMENT.c.size)
        .join(ATTACHMENT, ATTACHMENT.c.id == MESSAGE_ATTACHMENT.c.attachment_id)
        .where(MESSAGE_ATTACHMENT.c.message_id.in_(list(message_ids)))
        .order_by(MESSAGE_ATTACHMENT.c.id)
    )
    found: dict[int, list[AnyRow]] = defaultdict(list)
    for row in conn.execute(query):
        found[row.message_id].append(row)
    return found


def events(conn: Connection, ticket_id: int) -> list[AnyRow]:
    query = select(EVENT).where(EVENT.c.ticket_id == ticket_id).order_by(EVENT.c.at, EVENT.c.id)
    return list(conn.execute(query).all())


def attachment(conn: Connection, ticket_id: int, link_id: int) -> AnyRow | None:
    """One attachment of one ticket with its bytes and the visibility of its message."""
    query = (
        select(MESSAGE_ATTACHMENT.c.filename, MESSAGE_ATTACHMENT.c.content_type, MESSAGE.c.visibility, ATTACHMENT.c.data)
        .join(MESSAGE, MESSAGE.c.id == MESSAGE_ATTACHMENT.c.message_id)
        .join(ATTACHMENT, ATTACHMENT.c.id == MESSAGE_ATTACHMENT.c.attachment_id)
        .where(MESSAGE_ATTACHMENT.c.id == link_id, MESSAGE.c.ticket_id == ticket_id)
    )
    return conn.execute(query).first()


def customer(conn: Connection, email: str) -> AnyRow | None:
    return conn.execute(select(CUSTOMER).where(CUSTOMER.c.email == email)).first()


def rating(conn: Connection, ticket_id: int) -> AnyRow | None:
    return conn.execute(select(RATING).where(RATING.c.ticket_id == ticket_id)).first()


_OUTBOX_COLUMNS = (OUTBOX.c.id, OUTBOX.c.created_at, OUTBOX.c.kind, OUTBOX.c.rcpt_to, OUTBOX.c.state,
                   OUTBOX.c.attempts, OUTBOX.c.next_attempt_at, OUTBOX.c.last_error, OUTBOX.c.sent_at,
                   TICKET.c.number, TICKET.c.subject)


def outbox(conn: Connection, viewer: Viewer, *, limit: int = 100) -> list[AnyRow]:
    """The newest outgoing mail `viewer` may see: waiting and dead first, then sent.

    Only names, states and errors: never the bodies, which hold the recipients' personal links.
    Mail about no ticket (sign-in links, digests) is for those who see every ticket.
    """
    query = select(*_OUTBOX_COLUMNS).select_from(OUTBOX.outerjoin(TICKET, TICKET.c.id == OUTBOX.c.ticket_id))
    if not viewer.everything:
        query = query.where(OUTBOX.c.ticket_id.is_not(None), ticket_clause(viewer, TICKET))
    waiting_first = (OUTBOX.c.state == "sent").asc()
    return list(conn.execute(query.order_by(waiting_first, OUTBOX.c.id.desc()).limit(limit)).all())
