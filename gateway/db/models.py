"""The stored data: SQLModel tables for customers, tickets, messages and the three queues.

Raw bytes of every inbound message live in `inbound.raw` and are never deleted by processing:
a message row points back at its inbound item, and a quarantine entry keeps the same reference,
so "nothing lost" holds whatever a later stage does.

These classes declare the schema; the statements run on the Core copy in `gateway.db.tables`.
After changing a model, write its migration and run `python -m gateway.db.mirror`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Index, LargeBinary, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from gateway.clock import utcnow
from gateway.db.normalise import bound_text_columns


class Customer(SQLModel, table=True):
    """A person who mails us; registered automatically on their first mail."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(default="", max_length=200)
    language: str | None = Field(default=None, max_length=8)
    # IANA zone of the times in their mail and pages; null: their organisation's, else the default.
    timezone: str | None = Field(default=None, max_length=64)
    organisation: str | None = Field(default=None, max_length=100, index=True)
    # Opted out of opt-out notifications (status changes); mandatory mail still goes out.
    notifications_off: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Ticket(SQLModel, table=True):
    """One request of one customer; `number` is what customers and agents quote."""

    __table_args__ = (
        Index("ix_ticket_customer_updated", "customer_id", "updated_at"),
        Index("ix_ticket_organisation_updated", "organisation", "updated_at"),
        Index("ix_ticket_department_updated", "department", "updated_at"),
        Index("ix_ticket_assignee_updated", "assignee", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int | None = Field(default=None, unique=True, index=True)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="new", max_length=32, index=True)
    customer_id: int = Field(foreign_key="customer.id")
    mailbox: str = Field(default="", max_length=320)
    department: str | None = Field(default=None, max_length=100, index=True)
    topic: str | None = Field(default=None, max_length=100)
    priority: str = Field(default="normal", max_length=16)
    sla_plan: str | None = Field(default=None, max_length=64)
    assignee: str | None = Field(default=None, max_length=320)
    organisation: str | None = Field(default=None, max_length=100, index=True)
    language: str | None = Field(default=None, max_length=8)
    tags: str = Field(default="", max_length=1000)  # comma-separated
    fields: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))  # JSON object
    missing_fields: str = Field(default="", max_length=1000)  # comma-separated, asked for in mail
    linked_ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    resolved_at: datetime | None = None
    closed_at: datetime | None = None


class Participant(SQLModel, table=True):
    """An address allowed to write into a ticket by quoting its tag (customer, cc'd people)."""

    __table_args__ = (UniqueConstraint("ticket_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    email: str = Field(max_length=320, index=True)
    role: str = Field(default="customer", max_length=32)


class Message(SQLModel, table=True):
    """One mail on a ticket, in or out; `inbound_id` points at the raw bytes we received."""

    __table_args__ = (Index("ix_message_mid_hash", "message_id", "body_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: str = Field(max_length=8)  # "in" or "out"
    kind: str = Field(default="customer", max_length=32)
    author: str = Field(default="", max_length=320)
    message_id: str = Field(default="", max_length=998, index=True)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    body_hash: str = Field(default="", max_length=64)
    thread_by: str = Field(default="", max_length=32)
    # "public" is shown to the customer; "internal" (agent notes) never is.
    visibility: str = Field(default="public", max_length=16)
    html: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # sanitised
    # `html` is sanitize_html's output, made within gateway.mail.limits: shown as it is.
    html_sanitised: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False,
                                                                 server_default=false()))
    # The whole body as text (quoted history included); `text` is only what is new.
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The signature taken off `text` (sign-off, name, contact lines), kept beside it.
    signature: str = Field(default="", sa_column=Column(Text, nullable=False, default="", server_default=""))
    # Which of our mailboxes this copy was routed for (one mail to two addresses: two copies).
    mailbox: str = Field(default="", max_length=320)
    # JSON: how this message was handled (classification reasons, thread strategy, rules).
    trace: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # The conversation root of Outlook's Thread-Index (its first 22 bytes, hex): threads an
    # Outlook reply that carries no In-Reply-To or References.
    thread_root: str = Field(default="", max_length=64, index=True)


class Inbound(SQLModel, table=True):
    """The durable inbound queue: raw bytes committed before the SMTP 250 is sent."""

    __table_args__ = (Index("ix_inbound_state_id", "state", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow)
    source: str = Field(default="smtp", max_length=16)
    mail_from: str = Field(default="", max_length=998)
    rcpt_to: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int = 0
    state: str = Field(default="queued", max_length=16)  # queued, done, quarantined
    claim: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    processed_at: datetime | None = None
    note: str = Field(default="", max_length=500)
    # IP address of the SMTP client that handed the message over; "" for pipe and IMAP.
    peer: str = Field(default="", max_length=64)
    # The message's own Message-ID (as `gateway.validate` stores it): replies look for a
    # parent still waiting here. `deferrals`: how often this one waited for its parent.
    message_id: str = Field(default="", max_length=998, index=True)
    deferrals: int = 0


class Outbox(SQLModel, table=True):
    """The durable outbox: rendered mail waiting for the relay, with its delivery history."""

    __table_args__ = (Index("ix_outbox_state_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    kind: str = Field(default="confirmation", max_length=32)
    mail_from: str = Field(max_length=320)
    rcpt_to: str = Field(max_length=320)
    message_id: str = Field(max_length=998, index=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(default="pending", max_length=16)  # pending, sent, dead
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claim: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    last_error: str = Field(default="", max_length=1000)
    sent_at: datetime | None = None


class Quarantine(SQLModel, table=True):
    """An inbound item a stage could not handle, with the reason; the raw bytes stay in inbound."""

    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int = Field(foreign_key="inbound.id", index=True)
    stage: str = Field(default="", max_length=32)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    released_at: datetime | None = None


class TicketEvent(SQLModel, table=True):
    """The append-only history of a ticket: SLA clocks are recomputed from these rows."""

    __table_args__ = (Index("ix_ticketevent_ticket_at", "ticket_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=32)  # created, status, assigned, first_response, note, department, ...
    status: str | None = Field(default=None, max_length=32)  # the status after the event
    actor: str = Field(default="", max_length=320)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Attachment(SQLModel, table=True):
    """Attachment bytes, stored once per content hash whatever the number of messages using them."""

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True, index=True)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class MessageAttachment(SQLModel, table=True):
    """One attachment as it appears on one message: its name, type and inline Content-ID."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    attachment_id: int = Field(foreign_key="attachment.id")
    filename: str = Field(default="", max_length=500)
    content_type: str = Field(default="application/octet-stream", max_length=200)
    content_id: str | None = Field(default=None, max_length=500)


class Suppression(SQLModel, table=True):
    """Addresses we must not mail (hard bounces), until `until`."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    reason: str = Field(default="", max_length=1000)
    until: datetime
    created_at: datetime = Field(default_factory=utcnow)


class Bounce(SQLModel, table=True):
    """A delivery failure report matched (where possible) to the mail and ticket it is about."""

    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int = Field(foreign_key="inbound.id", index=True)
    recipient: str = Field(max_length=320, index=True)
    status: str = Field(default="", max_length=16)
    hard: bool = False
    diagnostic: str = Field(default="", max_length=1000)
    original_message_id: str | None = Field(default=None, max_length=998)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Budget(SQLModel, table=True):
    """Token buckets for automatic mail, per recipient and per ticket (`key`)."""

    key: str = Field(primary_key=True, max_length=400)
    tokens: float
    updated_at: datetime = Field(default_factory=utcnow)
    tripped_at: datetime | None = None  # set when the admin was told; cleared when it refills


class Rating(SQLModel, table=True):
    """A customer's 1-5 rating of a resolved ticket, credited to the agent who resolved it."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", unique=True)
    agent: str = Field(default="", max_length=320, index=True)
    score: int
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)


class Once(SQLModel, table=True):
    """Keys of things that must happen once (an escalation per breach, a used sign-in link)."""

    key: str = Field(primary_key=True, max_length=400)
    created_at: datetime = Field(default_factory=utcnow)


class ImapState(SQLModel, table=True):
    """How far the import of one IMAP folder got: the folder's UIDVALIDITY and the last UID taken."""

    account: str = Field(primary_key=True, max_length=200)
    folder: str = Field(primary_key=True, max_length=500)
    # UIDVALIDITY and UIDs are unsigned 32-bit numbers: beyond a signed INTEGER.
    uidvalidity: int = Field(sa_type=BigInteger)
    last_uid: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow)


class ImapSeen(SQLModel, table=True):
    """One imported IMAP message, committed with its inbound row; `done` once flagged or moved."""

    __table_args__ = (
        UniqueConstraint("account", "folder", "uidvalidity", "uid", name="uq_imapseen_uid"),
        Index("ix_imapseen_pending", "account", "folder", "done"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=200)
    folder: str = Field(max_length=500)
    uidvalidity: int = Field(sa_type=BigInteger)
    uid: int = Field(sa_type=BigInteger)
    inbound_id: int = Field(foreign_key="inbound.id")
    done: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class SignInHit(SQLModel, table=True):
    """One allowed request for a sign-in link, per address or per client (gateway.web.ratelimit)."""

    __table_args__ = (Index("ix_signinhit_scope_key_at", "scope", "key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)
    key: str = Field(max_length=400)
    at: datetime = Field(default_factory=utcnow)


# Last, once every table exists: NUL removed and lengths enforced alike on SQLite and PostgreSQL.
bound_text_columns(SQLModel.metadata)
