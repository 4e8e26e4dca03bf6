"""Typed rows: what a select of a whole table returns, column by column, for the type checker.

The hot paths use SQLAlchemy Core, whose `Row` attributes are untyped. These Protocols name the
columns of the tables code reads most, with their Python types, so that a function can take
`ticket: TicketRow` rather than `Any`. A `Row` of `select(TICKET)` satisfies `TicketRow` as it
is (no cast, no copy): rows stay rows at run time. A select that adds columns of its own (a
join, a label) satisfies the Protocol of the table it selects in full as well.

What the type checker gains is the type of each column inside the function that takes the
row. It cannot tell whether a given select really carries those columns (`Row` answers any
attribute name), so pass a row typed so only from a select of the whole table.

Each Protocol lists exactly its SQLModel table's columns, with the model's types (the primary
key never None in a stored row); tests/test_models_drift.py checks that they stay alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class CustomerRow(Protocol):
    """A row of `customer` (`gateway.db.models.Customer`)."""

    id: int
    email: str
    name: str
    language: str | None
    timezone: str | None
    organisation: str | None
    notifications_off: bool
    created_at: datetime


class TicketRow(Protocol):
    """A row of `ticket` (`gateway.db.models.Ticket`)."""

    id: int
    number: int  # set in the transaction that creates the ticket: never NULL once committed
    subject: str
    status: str
    customer_id: int
    mailbox: str
    department: str | None
    topic: str | None
    priority: str
    sla_plan: str | None
    assignee: str | None
    organisation: str | None
    language: str | None
    tags: str
    fields: str
    missing_fields: str
    linked_ticket_id: int | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None


class MessageRow(Protocol):
    """A row of `message` (`gateway.db.models.Message`)."""

    id: int
    ticket_id: int
    direction: str
    kind: str
    author: str
    message_id: str
    subject: str
    text: str
    body_hash: str
    thread_by: str
    visibility: str
    html: str
    html_sanitised: bool
    body: str
    signature: str
    mailbox: str
    trace: str
    inbound_id: int | None
    created_at: datetime
    thread_root: str


class InboundRow(Protocol):
    """A row of `inbound` (`gateway.db.models.Inbound`)."""

    id: int
    received_at: datetime
    source: str
    mail_from: str
    rcpt_to: str
    raw: bytes
    size: int
    state: str
    claim: str | None
    lease_until: datetime | None
    processed_at: datetime | None
    note: str
    peer: str
    message_id: str
    deferrals: int


class OutboxRow(Protocol):
    """A row of `outbox` (`gateway.db.models.Outbox`)."""

    id: int
    created_at: datetime
    ticket_id: int | None
    kind: str
    mail_from: str
    rcpt_to: str
    message_id: str
    raw: bytes
    state: str
    attempts: int
    next_attempt_at: datetime
    claim: str | None
    lease_until: datetime | None
    last_error: str
    sent_at: datetime | None
