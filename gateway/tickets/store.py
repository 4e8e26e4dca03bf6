"""Writing tickets in the caller's transaction: creation, messages, attachments, status changes.

Every change a ticket undergoes is also written to its append-only event log (`ticketevent`),
which is what SLA clocks are computed from; nothing here updates a status without an event.

It also owns the write-behind buffer of a batch (`WriteBehind`): rows held on the connection
and written with one statement per table when the batch ends (messages with their ids taken
ahead, on SQLite new customers and tickets too, outbox rows, the outbound copies of queued
mail, event log rows, participants, budget takes), or earlier where a reader of them needs
them: the held customers, tickets and messages before any statement that touches their tables
or one that refers to them (a read barrier on the connection), `flush_behind`
before reading a ticket's outbox rows, `flush_events` before reading its event log, and
`holds_participant` beside a read of its participants. A savepoint
that is rolled back takes back what was held inside it too, as it does the rows it wrote.
"""

from __future__ import annotations

import copy
import hashlib
import json
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, Table, bindparam, event, func, insert, select, update
from sqlalchemy.sql.elements import ClauseElement, TextClause
from sqlalchemy.sql.util import find_tables

from gateway.clock import utcnow
from gateway.db.ignore import dialect_insert, insert_ignore
from gateway.db.normalise import as_stored
from gateway.db.rows import TicketRow
from gateway.db.tables import (
    ATTACHMENT,
    BUDGET,
    CUSTOMER,
    EVENT,
    MESSAGE,
    MESSAGE_ATTACHMENT,
    OUTBOX,
    PARTICIPANT,
    TICKET,
)
from gateway.mail.parse import Attachment as MailAttachment
from gateway.tickets.lifecycle import Status, check_transition

# Statements built once: building them per message (values as literals) cost more than the
# database round trips themselves.
INSERT_TICKET = insert(TICKET).returning(TICKET.c.id)
INSERT_MESSAGE = insert(MESSAGE).returning(MESSAGE.c.id)
INSERT_EVENT = insert(EVENT)
NUMBER_TICKET = update(TICKET).where(TICKET.c.id == bindparam("tid")).values(number=bindparam("number"))
TOUCH_TICKET = update(TICKET).where(TICKET.c.id == bindparam("tid")).values(updated_at=bindparam("now"))
LAST_TICKET_ID = select(func.coalesce(func.max(TICKET.c.id), 0))
LAST_MESSAGE_ID = select(func.coalesce(func.max(MESSAGE.c.id), 0))
LAST_CUSTOMER_ID = select(func.coalesce(func.max(CUSTOMER.c.id), 0))
INSERT_CUSTOMER = insert(CUSTOMER)
INSERT_TICKET_HELD = insert(TICKET)
INSERT_TICKET_KEPT = insert(TICKET).returning(*TICKET.c)
# How a batch has ids for the rows it holds (`_next_id`): the highest there is (SQLite), or a
# block from the table's sequence (PostgreSQL).
_LAST_IDS = {"customer": LAST_CUSTOMER_ID, "ticket": LAST_TICKET_ID, "message": LAST_MESSAGE_ID}
_TAKE_IDS = {name: select(func.nextval(func.pg_get_serial_sequence(name, "id")))
             .select_from(func.generate_series(1, bindparam("n"))) for name in _LAST_IDS}
FIND_CUSTOMER = select(CUSTOMER).where(CUSTOMER.c.email == bindparam("email"))
FIND_CUSTOMERS = select(CUSTOMER).where(CUSTOMER.c.email.in_(bindparam("emails", expanding=True)))
FIND_ATTACHMENT = select(ATTACHMENT.c.id).where(ATTACHMENT.c.sha256 == bindparam("sha"))
INSERT_OUTBOX = insert(OUTBOX)
INSERT_COPY = insert(MESSAGE)
INSERT_BUCKET = insert(BUDGET)
SET_BUCKET = update(BUDGET).where(BUDGET.c.key == bindparam("k")).values(
    tokens=bindparam("tokens"), updated_at=bindparam("now"), tripped_at=bindparam("tripped"))
LOAD_TICKET = select(TICKET).where(TICKET.c.id == bindparam("tid"))
INSERT_FILE = insert(MESSAGE_ATTACHMENT)
SET_FIELDS = update(TICKET).where(TICKET.c.id == bindparam("tid")).values(
    fields=bindparam("new_fields"), missing_fields=bindparam("missing"))
NOTES = select(MESSAGE.c.text).where(MESSAGE.c.ticket_id == bindparam("tid"), MESSAGE.c.kind == "note")


@dataclass(frozen=True)
class TicketRef:
    """What mail about a ticket needs to know of it."""

    id: int
    number: int
    subject: str
    # The ticket's row as created, where the insert gave it back (the set-based batch): what
    # `load` would read until something changes the ticket.
    row: TicketRow | None = field(default=None, compare=False, repr=False)


# Where a batch's buffer hangs on its connection. `Connection.info` outlives the checkout (it is
# the pooled connection's), so `writing_behind` always takes it off again.
_BEHIND = "postdesk.write_behind"
# PostgreSQL: ticket ids taken from the sequence and not used yet, kept for the process's next
# batches on the same store, smallest last (see `_ticket_id`).
_KEPT_TICKET_IDS: weakref.WeakKeyDictionary[Engine, list[int]] = weakref.WeakKeyDictionary()


def _kept_ticket_ids(conn: Connection) -> list[int]:
    return _KEPT_TICKET_IDS.setdefault(conn.engine, [])


@dataclass
class WriteBehind:
    """Rows held back to the end of the batch, in the order they were made, and what it read once."""

    outbox: list[dict[str, Any]] = field(default_factory=list)
    copies: list[dict[str, Any]] = field(default_factory=list)
    tickets: set[int] = field(default_factory=set)
    # What `gateway.guard` read for the whole batch at once: budget buckets by key (None: there
    # is none yet, as for a ticket this batch created) and suppressions by address (None: none).
    # (Rows of `budget`, or `gateway.guard`'s held state of one after a take.)
    buckets: dict[str, Any] = field(default_factory=dict)
    # New buckets of this batch's tickets, written with the rest.
    new_buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What this batch took from buckets that exist, by key (the last value stands): the rows are
    # the batch's own until it commits (locked on PostgreSQL; SQLite's one writer), so each take
    # is written with the rest, and a second take in the batch starts from the first's.
    bucket_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppressed: dict[str, str | None] = field(default_factory=dict)
    # Message-IDs of this batch of which no copy was stored when it began (`gateway.copies`);
    # the first item to ask about one takes it out, as that item may store the first copy.
    uncopied: set[str] = field(default_factory=set)
    # The history a staff notice quotes, of tickets this batch opened with one message and no
    # files, as that message made it (`gateway.tickets.notices`); dropped when another is added.
    histories: dict[int, list[Any]] = field(default_factory=dict)
    # The customer rows of this batch's senders by address, read at once (`gateway.stages.customers`;
    # None: not a customer when the batch began), and the languages detected in the words of
    # those who were not, by those words.
    customers: dict[str, Row[Any] | None] = field(default_factory=dict)
    languages: dict[str, str | None] = field(default_factory=dict)
    # Event log rows in the order they were made (written in it, so their ids keep it), and
    # the tickets they are of.
    events: list[dict[str, Any]] = field(default_factory=list)
    event_tickets: set[int] = field(default_factory=set)
    # New participants by (ticket, address): the first one made stands, as ON CONFLICT DO NOTHING
    # would have it.
    participants: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    # Messages of this batch's mail, held with their ids (`add_message`), and how the next ids
    # are had: on SQLite counted on from max(id) (the batch holds the one write lock), on
    # PostgreSQL taken from the table's sequence `block` at a time. The copies of queued mail
    # take theirs the same way, so that a ticket's messages keep by id the order they were made.
    messages: list[dict[str, Any]] = field(default_factory=list)
    # New customers and tickets are held too, whole rows with their ids (SQLite: max(id) on;
    # PostgreSQL: from their sequences), written before the messages that refer to them.
    new_customers: list[dict[str, Any]] = field(default_factory=list)
    new_tickets: list[dict[str, Any]] = field(default_factory=list)
    # SQLite, one writer: the next id of each table, read once (ids follow max(id) there).
    next_ids: dict[str, int] = field(default_factory=dict)
    # PostgreSQL: ids taken from the sequences and not used yet, smallest last, `block` at a
    # time for messages and `ticket_block` for customers and tickets.
    customer_ids: list[int] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    block: int = 64
    # PostgreSQL: the ticket ids this batch may number its new tickets with, smallest last, and
    # how many it takes from the sequence when they run out (the mails of the batch).
    ticket_ids: list[int] = field(default_factory=list)
    ticket_block: int = 1
    # Every id this batch took from a sequence, by table, in the order taken: not one of them is
    # used for good until the batch commits.
    taken: list[tuple[str, int]] = field(default_factory=list)
    # Set while the buffer writes its own rows: those statements pass the read barrier.
    writing: bool = False
    # The buffer as it was when each open savepoint began, innermost last.
    marks: list[WriteBehind] = field(default_factory=list)

    def mark(self) -> WriteBehind:
        """A copy of what is held now, to go back to; the rows themselves are never changed."""
        return WriteBehind(**{f.name: copy.copy(getattr(self, f.name)) for f in fields(self) if f.name != "marks"})

    def restore(self, mark: WriteBehind) -> None:
        # Ticket ids taken since the mark were not used for good: they stay to number with.
        since = [taken_id for table, taken_id in self.taken[len(mark.taken):] if table == "ticket"]
        for f in fields(self):
            if f.name not in ("marks", "taken"):
                setattr(self, f.name, getattr(mark, f.name))
        self.ticket_ids = sorted({*self.ticket_ids, *since}, reverse=True)


@contextmanager
def writing_behind(conn: Connection, size: int = 64) -> Iterator[WriteBehind]:
    """Hold the batch's new rows on `conn` (see `WriteBehind`) until `flush_behind`.

    `size`: about how many mails the batch holds (how many message ids to take at a time)."""
    kept = _kept_ticket_ids(conn)
    had = kept[:]
    buffer = WriteBehind(block=max(2 * size, 8), ticket_ids=had[:], ticket_block=max(size, 1))
    kept.clear()
    done = False
    try:
        with carried_on(conn, buffer):
            yield buffer
        done = True
    finally:
        # What the batch did not number a ticket with stays for the next. A batch that fails is
        # rolled back: every id it had is unused again, first for its own item-by-item run.
        given = buffer.ticket_ids if done else {*had, *(i for table, i in buffer.taken if table == "ticket")}
        kept[:] = sorted({*kept, *given}, reverse=True)


@contextmanager
def carried_on(conn: Connection, buffer: WriteBehind) -> Iterator[WriteBehind]:
    """`buffer` held on `conn` inside the block: the batch's own (`writing_behind`), or one a
    batch filled on a read snapshot, carried on to the write transaction to be flushed there."""
    conn.info[_BEHIND] = buffer
    for name, listener in _SAVEPOINT_LISTENERS:
        event.listen(conn, name, listener)
    try:
        yield buffer
    finally:
        for name, listener in _SAVEPOINT_LISTENERS:
            event.remove(conn, name, listener)
        conn.info.pop(_BEHIND, None)


# A savepoint inside a batch (an agent's commands, all or nothing) may be rolled back: what was
# held back inside it must go with its rows, and what it flushed must be held again.
def _savepoint_begun(conn: Connection, name: str | None) -> None:
    buffer = behind(conn)
    if buffer is not None:
        buffer.marks.append(buffer.mark())


def _savepoint_rolled_back(conn: Connection, name: str, context: Any) -> None:
    buffer = behind(conn)
    if buffer is not None and buffer.marks:
        buffer.restore(buffer.marks.pop())


def _savepoint_released(conn: Connection, name: str, context: Any) -> None:
    buffer = behind(conn)
    if buffer is not None and buffer.marks:
        buffer.marks.pop()


# The read barrier: a statement that may read a held row (or write a row that refers to one)
# has the held rows written first, so that nothing in the batch can tell they were held.
# Which tables a statement touches is worked out once per statement object.
def _referring(table: Table) -> frozenset[str]:
    """`table` and every table whose rows refer to its rows, directly or through another."""
    found = {table.name}
    grown = True
    while grown:
        more = {other.name for other in table.metadata.tables.values()
                if any(fk.column.table.name in found for fk in other.foreign_keys)} - found
        found |= more
        grown = bool(more)
    return frozenset(found)


_ON_MESSAGES, _ON_TICKETS, _ON_CUSTOMERS = _referring(MESSAGE), _referring(TICKET), _referring(CUSTOMER)
_EVERYTHING = frozenset({"*"})
_TOUCHES: dict[int, tuple[Any, frozenset[str]]] = {}


def _touched(statement: Any) -> frozenset[str]:
    """The names of the tables `statement` reads or writes ("*" for SQL as text: any)."""
    if not isinstance(statement, ClauseElement) or isinstance(statement, TextClause):
        return _EVERYTHING
    known = _TOUCHES.get(id(statement))
    if known is not None and known[0] is statement:
        return known[1]
    tables = find_tables(statement, check_columns=True, include_aliases=True, include_joins=True,
                         include_selects=True, include_crud=True)
    names = frozenset(str(getattr(table, "name", "*")) for table in tables)
    if len(_TOUCHES) > 2000:  # statements built per call: keep the cache from growing without end
        _TOUCHES.clear()
    _TOUCHES[id(statement)] = (statement, names)
    return names


def _held_reach(buffer: WriteBehind) -> frozenset[str]:
    """The tables a statement must not touch while the held rows are not written."""
    if buffer.new_customers:
        return _ON_CUSTOMERS
    if buffer.new_tickets:
        return _ON_TICKETS
    return _ON_MESSAGES if buffer.messages else frozenset()


def _barrier(conn: Connection, statement: Any, multiparams: Any, params: Any, options: Any) -> None:
    buffer = behind(conn)
    if buffer is None or buffer.writing:
        return
    reach = _held_reach(buffer)
    if reach:
        touched = _touched(statement)
        if touched is _EVERYTHING or not reach.isdisjoint(touched):
            _write_held(conn, buffer)


_SAVEPOINT_LISTENERS = (("savepoint", _savepoint_begun), ("rollback_savepoint", _savepoint_rolled_back),
                        ("release_savepoint", _savepoint_released), ("before_execute", _barrier))


def behind(conn: Connection) -> WriteBehind | None:
    """The buffer of the batch running on `conn`, if it writes behind."""
    buffer: WriteBehind | None = conn.info.get(_BEHIND)
    return buffer


def queue_mail(conn: Connection, row: dict[str, Any], copy: dict[str, Any] | None) -> None:
    """An outbox row and its copy on the ticket: written now, or held back when the batch writes behind."""
    buffer = behind(conn)
    if buffer is None:
        conn.execute(INSERT_OUTBOX, row)
        if copy is not None:
            conn.execute(INSERT_COPY, copy)
        return
    buffer.outbox.append(row)
    if row["ticket_id"] is not None:
        buffer.tickets.add(row["ticket_id"])
    if copy is not None:
        buffer.copies.append({**copy, "id": _message_id(conn, buffer)})


def flush_buckets(conn: Connection) -> None:
    """Write the budget buckets held back, new ones and what was taken from old ones (`gateway.guard`)."""
    buffer = behind(conn)
    if buffer is None:
        return
    if buffer.new_buckets:
        conn.execute(INSERT_BUCKET, list(buffer.new_buckets.values()))
        buffer.new_buckets = {}
    if buffer.bucket_sets:
        conn.execute(SET_BUCKET, list(buffer.bucket_sets.values()))  # executemany, keys in order taken
        buffer.bucket_sets = {}


def flush_behind(conn: Connection, ticket_ids: Sequence[int] | None = None) -> None:
    """Write what is held back: all of it, or only if it holds rows of one of `ticket_ids`.

    A reader of a ticket's messages or outbox rows calls this first, so it sees them all, in
    the order an item-by-item run would have written them."""
    buffer = behind(conn)
    if buffer is None or (ticket_ids is not None and buffer.tickets.isdisjoint(ticket_ids)):
        return
    if ticket_ids is None:
        flush_buckets(conn)
        _write_events(conn, buffer)
        _write_participants(conn, buffer)
    _write_held(conn, buffer)
    if buffer.outbox:
        conn.execute(INSERT_OUTBOX, buffer.outbox)
    if buffer.copies:
        conn.execute(INSERT_COPY, buffer.copies)
    buffer.outbox, buffer.copies, buffer.tickets = [], [], set()


def _write_held(conn: Connection, buffer: WriteBehind) -> None:
    """The held rows: new customers, then new tickets, then messages, one executemany per table
    and set of columns given (their ids are their own)."""
    if not (buffer.messages or buffer.new_tickets or buffer.new_customers):
        return
    alike: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in buffer.messages:
        alike.setdefault(tuple(row), []).append(row)
    held = [(INSERT_CUSTOMER, buffer.new_customers), (INSERT_TICKET_HELD, buffer.new_tickets),
            *((INSERT_COPY, rows) for rows in alike.values())]
    buffer.messages, buffer.new_tickets, buffer.new_customers = [], [], []
    with _own(buffer):
        for statement, rows in held:
            if rows:
                conn.execute(statement, rows)


@contextmanager
def _own(buffer: WriteBehind) -> Iterator[None]:
    """The buffer's own statements (writing held rows, taking ids) pass the read barrier."""
    buffer.writing = True
    try:
        yield
    finally:
        buffer.writing = False


def _last_id(conn: Connection, buffer: WriteBehind, query: Any) -> int:
    """The highest id of a table, past the read barrier: held rows' ids are above it anyway."""
    with _own(buffer):
        return int(conn.execute(query).scalar_one())


def _message_id(conn: Connection, buffer: WriteBehind) -> int:
    """The id of the batch's next message row (see `WriteBehind.messages`)."""
    return _next_id(conn, buffer, "message", buffer.message_ids, buffer.block)


def _next_id(conn: Connection, buffer: WriteBehind, table: str, pool: list[int], block: int) -> int:
    """The next id of a row of `table` the batch holds: counted on from max(id) (SQLite, under
    the batch's one write lock), or the smallest in `pool`, taken `block` at a time from the
    table's sequence when it runs out (PostgreSQL: unique across daemons)."""
    if conn.dialect.name == "postgresql":
        if not pool:
            with _own(buffer):
                taken = conn.execute(_TAKE_IDS[table], {"n": block}).scalars().all()
            pool.extend(sorted(taken, reverse=True))
            buffer.taken.extend((table, taken_id) for taken_id in taken)
        return pool.pop()
    next_id = buffer.next_ids.get(table) or _last_id(conn, buffer, _LAST_IDS[table]) + 1
    buffer.next_ids[table] = next_id + 1
    return next_id


def flush_events(conn: Connection, ticket_ids: Sequence[int]) -> None:
    """Write the event log rows held back if some are of `ticket_ids`: a reader of their log calls this first.

    All of them, not only those tickets': event ids keep the order the events were made in."""
    buffer = behind(conn)
    if buffer is not None and not buffer.event_tickets.isdisjoint(ticket_ids):
        _write_events(conn, buffer)


def _write_events(conn: Connection, buffer: WriteBehind) -> None:
    if buffer.events:
        conn.execute(INSERT_EVENT, buffer.events)  # executemany: row by row in order, so ids follow it
    buffer.events, buffer.event_tickets = [], set()


# Participants held back go in as multi-row INSERT … ON CONFLICT DO NOTHING (another daemon may
# have added one meanwhile), in slices well under both databases' limits on parameters.
@cache
def _ignoring_participants(dialect: str) -> Any:
    return dialect_insert(dialect)(PARTICIPANT).on_conflict_do_nothing()

_PARTICIPANT_ROWS = 1000


def _write_participants(conn: Connection, buffer: WriteBehind) -> None:
    rows = list(buffer.participants.values())
    for start in range(0, len(rows), _PARTICIPANT_ROWS):
        conn.execute(_ignoring_participants(conn.dialect.name).values(rows[start:start + _PARTICIPANT_ROWS]))
    buffer.participants = {}


def holds_participant(conn: Connection, ticket_id: int, email: str) -> bool:
    """Whether this batch made `email` a participant of the ticket, not yet written (read the table too)."""
    buffer = behind(conn)
    return buffer is not None and (ticket_id, email) in buffer.participants


# A first mail's customer comes back from the insert itself; a known one is read.
@cache
def _new_customer(dialect: str) -> Any:
    return dialect_insert(dialect)(CUSTOMER).on_conflict_do_nothing().returning(*CUSTOMER.c)


def read_customers(conn: Connection, emails: Sequence[str]) -> dict[str, Row[Any] | None]:
    """In a set-based batch: the customers with these addresses, read in one statement and kept
    for `customer` (None for an address that is not one yet)."""
    buffer = behind(conn)
    wanted = sorted(set(emails))
    if buffer is None or not wanted:
        return {}
    found = {row.email: row for row in conn.execute(FIND_CUSTOMERS, {"emails": wanted})}
    buffer.customers.update({email: found.get(email) for email in wanted})
    return buffer.customers


def customer(conn: Connection, email: str, name: str, organisation: str | None) -> Row[Any]:
    """The customer with this address, registered now if this is their first mail.

    A customer the batch read ahead is not read again; nothing in the processor changes a
    customer's row, so what was read at the batch's start stays true to its end."""
    buffer = behind(conn)
    known = buffer.customers.get(email) if buffer is not None else None
    if known is not None:
        return known
    values: dict[str, Any] = {"email": email, "name": name, "organisation": organisation,
                              "notifications_off": False, "created_at": utcnow()}
    if buffer is not None and email in buffer.customers:
        # Read ahead and not there. SQLite: under the batch's write lock nobody else can add it
        # now. PostgreSQL: another daemon may, before this batch commits; then the held row's
        # insert fails the batch, and its item-by-item run finds that customer.
        values["id"] = _next_id(conn, buffer, "customer", buffer.customer_ids, buffer.ticket_block)
        held = _held_row(CUSTOMER, values, conn)
        buffer.new_customers.append(held)
        made_here: Row[Any] = cast(Row[Any], HeldRow(held))
        buffer.customers[email] = made_here
        return made_here
    made = conn.execute(_new_customer(conn.dialect.name), values).first()
    row: Row[Any] = made if made is not None else conn.execute(FIND_CUSTOMER, {"email": email}).one()
    if buffer is not None:
        buffer.customers[email] = row
    return row


class HeldRow:
    """A row the batch holds, as reading it back would give it: its columns as attributes."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"HeldRow({self.__dict__!r})"


def _held_row(table: Table, values: dict[str, Any], conn: Connection) -> dict[str, Any]:
    """Every column of a new row of `table`: the values given, else the column's default, as stored."""
    row = {}
    for column in table.columns:
        if column.name in values:
            value = values[column.name]
        elif column.default is not None and getattr(column.default, "is_scalar", False):
            value = column.default.arg  # type: ignore[attr-defined]
        elif column.default is not None and getattr(column.default, "is_callable", False):
            value = column.default.arg(None)  # type: ignore[attr-defined]
        else:
            value = None
        row[column.name] = as_stored(column, value, conn.dialect)
    return row


def detected_language(conn: Connection, text: str) -> tuple[bool, str | None]:
    """(whether the batch detected it, the language) of a new customer's words (`read_customers`' stage)."""
    buffer = behind(conn)
    if buffer is None or text not in buffer.languages:
        return False, None
    return True, buffer.languages[text]


def add_participant(conn: Connection, ticket_id: int, email: str, role: str) -> None:
    """`email` may write into the ticket by its tag: added now, or held back when the batch writes behind."""
    row = {"ticket_id": ticket_id, "email": email, "role": role}
    buffer = behind(conn)
    if buffer is None:
        insert_ignore(conn, PARTICIPANT, row)
    else:
        buffer.participants.setdefault((ticket_id, email), row)


def add_event(conn: Connection, ticket_id: int, kind: str, *, status: str | None = None, actor: str = "",
              detail: str = "", at: datetime | None = None) -> None:
    """A row of the ticket's event log: written now, or held back when the batch writes behind."""
    row = {"ticket_id": ticket_id, "at": at or utcnow(), "kind": kind, "status": status, "actor": actor,
           "detail": detail}
    buffer = behind(conn)
    if buffer is None:
        conn.execute(INSERT_EVENT, row)
        return
    buffer.events.append(row)
    buffer.event_tickets.add(ticket_id)


def create_ticket(conn: Connection, *, first_number: int, customer_id: int, subject: str, mailbox: str,
                  actor: str, values: dict[str, Any], why: str) -> TicketRef:
    """A new ticket in status `new`, with its `created` event; `values` sets routing columns."""
    now = utcnow()
    row = {"subject": subject, "status": Status.NEW.value, "customer_id": customer_id, "mailbox": mailbox,
           "created_at": now, "updated_at": now, "priority": "normal", "tags": "", "fields": "{}",
           "missing_fields": "", **values}
    buffer = behind(conn)
    made = _insert_ticket(conn, row, first_number, buffer)
    ticket_id = made if isinstance(made, int) else int(made.id)
    number = first_number + ticket_id - 1
    if buffer is not None:
        buffer.buckets[f"ticket:{ticket_id}"] = None
    add_event(conn, ticket_id, "created", status=Status.NEW.value, actor=actor, detail=why, at=now)
    return TicketRef(ticket_id, number, subject, None if isinstance(made, int) else made)


def _insert_ticket(conn: Connection, row: dict[str, Any], first_number: int,
                   buffer: WriteBehind | None) -> int | TicketRow:
    """The new ticket's row with its number, which follows its id; returns the row as made, or
    only its id where the number is written after it.

    Numbers follow ids: unique across daemons without a counter row everyone would lock."""
    if buffer is None:
        if conn.dialect.name == "postgresql":
            kept = _kept_ticket_ids(conn)
            if kept:
                # Ids a batch left (or gave back, failing) come first: numbers keep the mail's order.
                ticket_id = kept.pop()
                made: TicketRow = conn.execute(INSERT_TICKET_KEPT, {
                    **row, "id": ticket_id, "number": first_number + ticket_id - 1}).one()
                return made
            made = conn.execute(_numbered(tuple(row)), {f"v_{k}": v for k, v in row.items()}
                                | {"v_first": first_number}).one()
            return made
        ticket_id = int(conn.execute(INSERT_TICKET, row).scalar_one())
        conn.execute(NUMBER_TICKET, {"tid": ticket_id, "number": first_number + ticket_id - 1})
        return ticket_id
    ticket_id = _ticket_id(conn, buffer)
    held = _held_row(TICKET, {**row, "id": ticket_id, "number": first_number + ticket_id - 1}, conn)
    buffer.new_tickets.append(held)
    return cast(TicketRow, HeldRow(held))


def _ticket_id(conn: Connection, buffer: WriteBehind) -> int:
    """The id of the batch's next new ticket, which its number follows.

    On PostgreSQL a batch takes as many as it has mails; the ones it leaves stay for the
    process's next batch (`writing_behind`). Numbers thus keep the order tickets were made in
    by one processor and have no gaps, but for the ids a process held when it ended (a restart
    after a busy spell), as with a sequence's CACHE; two daemons number in turns of a batch.
    """
    return _next_id(conn, buffer, "ticket", buffer.ticket_ids, buffer.ticket_block)


# PostgreSQL's INSERT of a numbered ticket, one per set of columns given, built once each.
_NUMBERED: dict[tuple[str, ...], Any] = {}


def _numbered(keys: tuple[str, ...]) -> Any:
    """INSERT … SELECT: the id from the table's sequence and the number from it, in one statement."""
    statement = _NUMBERED.get(keys)
    if statement is None:
        new = select(func.nextval(func.pg_get_serial_sequence("ticket", "id")).label("id")).subquery()
        given = [bindparam(f"v_{k}", type_=TICKET.c[k].type) for k in keys]
        number = new.c.id + bindparam("v_first", type_=TICKET.c.number.type) - 1
        statement = _NUMBERED[keys] = insert(TICKET).from_select(
            ["id", "number", *keys], select(new.c.id, number, *given)).returning(*TICKET.c)
    return statement


def add_message(conn: Connection, ticket_id: int, values: dict[str, Any], *, touch: bool = True) -> int:
    """A message on the ticket; `touch=False` for a ticket's first, made with it (updated then)."""
    flush_behind(conn, [ticket_id])  # the ticket's messages stay in the order they were made
    row = {"direction": "in", "kind": "customer", "author": "", "message_id": "", "subject": "", "text": "",
           "body": "", "body_hash": "", "thread_by": "", "visibility": "public", "html": "", "trace": "{}",
           "mailbox": "", "created_at": utcnow(), **values, "ticket_id": ticket_id}
    buffer = behind(conn)
    if buffer is None:
        message_id = conn.execute(INSERT_MESSAGE, row).scalar_one()
    else:
        message_id = _message_id(conn, buffer)
        buffer.messages.append({**row, "id": message_id})
        buffer.histories.pop(ticket_id, None)  # the ticket's history is no longer what was kept
    if touch:
        conn.execute(TOUCH_TICKET, {"tid": ticket_id, "now": row["created_at"]})
    return int(message_id)


def keep_history(conn: Connection, ticket_id: int, rows: list[Any]) -> None:
    """In a set-based batch, what a new ticket's history is, known without reading it back."""
    buffer = behind(conn)
    if buffer is not None:
        buffer.histories[ticket_id] = rows


def kept_history(conn: Connection, ticket_id: int) -> list[Any] | None:
    buffer = behind(conn)
    return buffer.histories.get(ticket_id) if buffer is not None else None


def store_attachments(conn: Connection, message_row: int, attachments: Sequence[MailAttachment],
                      max_size: int) -> list[str]:
    """Keep each attachment once per content hash; returns notes on what was left out."""
    notes = []
    for item in attachments:
        if len(item.payload) > max_size:
            notes.append(f"attachment {item.filename!r} ({len(item.payload)} bytes) dropped: over the "
                         f"{max_size}-byte limit; the raw message keeps it")
            continue
        digest = hashlib.sha256(item.payload).hexdigest()
        insert_ignore(conn, ATTACHMENT, {"sha256": digest, "size": len(item.payload), "data": item.payload,
                                         "created_at": utcnow()})
        attachment_id = conn.execute(FIND_ATTACHMENT, {"sha": digest}).scalar_one()
        conn.execute(INSERT_FILE, {
            "message_id": message_row, "attachment_id": attachment_id, "filename": item.filename[:500],
            "content_type": item.content_type[:200], "content_id": (item.content_id or None),
        })
    return notes


def note_texts(conn: Connection, ticket_id: int) -> list[str]:
    """The texts of the ticket's internal notes."""
    return [row.text for row in conn.execute(NOTES, {"tid": ticket_id})]


def load(conn: Connection, ticket_id: int) -> TicketRow:
    return conn.execute(LOAD_TICKET, {"tid": ticket_id}).one()


def change_status(conn: Connection, ticket: TicketRow, target: Status, *, actor: str, why: str) -> None:
    """Move a ticket to `target` if the lifecycle allows it (InvalidTransition otherwise)."""
    current = Status(ticket.status)
    check_transition(current, target)
    now = utcnow()
    values: dict[str, Any] = {"status": target.value, "updated_at": now}
    if target is Status.RESOLVED:
        values["resolved_at"] = now
    if target is Status.CLOSED:
        values["closed_at"] = now
    conn.execute(update(TICKET).where(TICKET.c.id == ticket.id).values(**values))
    add_event(conn, ticket.id, "status", status=target.value, actor=actor, detail=why, at=now)


def update_fields(conn: Connection, ticket: TicketRow, given: dict[str, str], required: Sequence[str]) -> list[str]:
    """Merge fields a reply supplied; returns what is still missing."""
    fields = {**json.loads(ticket.fields or "{}"), **given}
    missing = [name for name in required if not fields.get(name)]
    conn.execute(SET_FIELDS, {"tid": ticket.id, "new_fields": json.dumps(fields, ensure_ascii=False),
                              "missing": ",".join(missing)})
    return missing
