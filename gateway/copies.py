"""One mail, one message, whatever the delivery: copies of one mail and what they already covered.

An MTA delivers a mail to support@ and service@ either once with both recipients or once per
recipient (Postfix's pipe transport, a split SMTP delivery, two IMAP mailboxes that both got it);
it also delivers again after a lost 250. Copies share the Message-ID and body. Every copy is
routed over all our mailboxes its envelope, To and Cc name (`recipients`), so the first copy
opens every ticket the rules fan out to; a later copy finds what earlier ones covered
(`earlier_copies`) and adds only what none could have seen: a Bcc delivered on its own, to a
department none of the earlier copies opened a ticket in. On PostgreSQL, two daemons handling
two copies at once take turns (`hold_message_ids`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, select, text

from gateway.db.tables import INBOUND, MESSAGE, TICKET
from gateway.tickets.store import behind

# Earlier deliveries of one mail: the mailbox each copy was filed under, the envelope it came
# with and the department of its ticket.
_COPIES = (
    select(MESSAGE.c.mailbox, INBOUND.c.rcpt_to, TICKET.c.department)
    .select_from(MESSAGE.outerjoin(INBOUND, INBOUND.c.id == MESSAGE.c.inbound_id)
                 .join(TICKET, TICKET.c.id == MESSAGE.c.ticket_id))
    .where(MESSAGE.c.message_id == bindparam("mid"), MESSAGE.c.body_hash == bindparam("hash"),
           MESSAGE.c.direction == "in")
)
# All of a batch's keys in one round trip, taken in key order (the sorted subquery sets the order
# the function runs in), so two batches wait for each other instead of deadlocking.
_LOCK = text("SELECT count(pg_advisory_xact_lock(k)) FROM "
             "(SELECT DISTINCT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS held")
# Which of a batch's Message-IDs some stored mail already has.
_STORED = (select(MESSAGE.c.message_id).distinct()
           .where(MESSAGE.c.message_id.in_(bindparam("mids", expanding=True)), MESSAGE.c.direction == "in"))


def recipients(envelope: list[str], named: list[str], ours: Iterable[str]) -> list[str]:
    """Our mailboxes among the envelope's (first) and the headers' (then), without repeats."""
    mine = set(ours)
    found = [box for box in dict.fromkeys(envelope + named) if box in mine]
    return found or envelope[:1]


@dataclass
class Earlier:
    """What earlier copies of this mail covered."""

    found: bool = False
    mailboxes: set[str] = field(default_factory=set)
    departments: set[str | None] = field(default_factory=set)


def earlier_copies(conn: Connection, message_id: str, body_hash: str, named: list[str],
                   base: Callable[[str], str]) -> Earlier:
    """The mailboxes earlier copies were for (their envelopes, the headers all copies share, the
    mailbox each was filed under) and the departments of the tickets they are on."""
    if not message_id:
        return Earlier()
    buffer = behind(conn)
    if buffer is not None and message_id in buffer.uncopied:
        buffer.uncopied.discard(message_id)  # this item may store the first copy: ask again after it
        return Earlier()
    copies = list(conn.execute(_COPIES, {"mid": message_id, "hash": body_hash}))
    if not copies:
        return Earlier()
    boxes = set(named) | {row.mailbox for row in copies}
    boxes |= {base(r) for row in copies for r in (row.rcpt_to or "").split(",") if r}
    return Earlier(True, boxes, {row.department for row in copies})


def read_ahead(conn: Connection, message_ids: Iterable[str]) -> None:
    """A set-based batch asks in one statement which of its Message-IDs are stored already: a
    mail none of whose copies is stored (nearly all of them) needs no `earlier_copies` query."""
    buffer = behind(conn)
    wanted = sorted({mid for mid in message_ids if mid})
    if buffer is None or not wanted:
        return
    stored = {mid for (mid,) in conn.execute(_STORED, {"mids": wanted})}
    buffer.uncopied.update(mid for mid in wanted if mid not in stored)


def _lock_key(message_id: str) -> int:
    """A signed 64-bit advisory-lock key for one Message-ID."""
    digest = hashlib.sha256(b"postdesk-message-id:" + message_id.encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def hold_message_ids(conn: Connection, message_ids: Iterable[str]) -> None:
    """On PostgreSQL, hold each Message-ID for the rest of this transaction, in one order.

    Two daemons may each claim one copy of a mail; without this neither would see the other's
    copy and both would open tickets. Taking all of a batch's locks up front and sorted means two
    batches wait for each other, never deadlock.
    """
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(mid) for mid in message_ids if mid})
    if keys:
        conn.execute(_LOCK, {"keys": keys})
