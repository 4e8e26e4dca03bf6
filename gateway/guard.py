"""What may stop automatic mail before it is queued: the suppression list and mail budgets.

Budgets are token buckets kept in the database (`budget`), one per recipient and one per ticket,
so they hold across restarts and across daemons. Two gateways answering each other run their
buckets dry within `capacity` mails and then stop. A bucket that trips is logged and reported to
the admin once; it is re-armed when it has refilled.

Budgets stop loops, not people: mail a person's action causes (a resolution, a question, any
status mail) is never refused by a budget but *deferred*. It takes its token on credit, the
bucket going below zero, and is due when the bucket would have refilled to it: the outbox
sends it then. Only mail that answers incoming mail (a confirmation) is held back, since
deferring that would keep a loop with a robot going at the refill rate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, bindparam, select, update

from gateway.clock import utcnow
from gateway.config import Bucket, Config
from gateway.db.ignore import insert_ignore
from gateway.db.tables import BUDGET, SUPPRESSION
from gateway.tickets.store import SET_BUCKET as _SET_BUCKET
from gateway.tickets.store import behind

log = logging.getLogger("gateway.outbox")
_READ_BUCKET = select(BUDGET).where(BUDGET.c.key == bindparam("key"))
_LOCK_BUCKET = _READ_BUCKET.with_for_update()
_READ_BUCKETS = select(BUDGET).where(BUDGET.c.key.in_(bindparam("keys", expanding=True))).order_by(BUDGET.c.key)
_LOCK_BUCKETS = _READ_BUCKETS.with_for_update()
_SUPPRESSIONS = select(SUPPRESSION.c.email, SUPPRESSION.c.reason).where(
    SUPPRESSION.c.email.in_(bindparam("emails", expanding=True)), SUPPRESSION.c.until > bindparam("now"))
_SUPPRESSED = select(SUPPRESSION.c.reason).where(
    SUPPRESSION.c.email == bindparam("email"), SUPPRESSION.c.until > bindparam("now"))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""
    # Set when this refusal is the first since the bucket was last full: tell the admin now.
    report: bool = False
    # Allowed on credit: the mail must wait in the outbox until then.
    not_before: datetime | None = None


def suppressed(conn: Connection, address: str) -> str | None:
    """The reason `address` must not be mailed now, or None."""
    buffer = behind(conn)
    if buffer is not None and address.lower() in buffer.suppressed:
        return buffer.suppressed[address.lower()]
    reason: str | None = conn.execute(_SUPPRESSED, {"email": address.lower(), "now": utcnow()}).scalar()
    return reason


def read_ahead(conn: Connection, addresses: Sequence[str]) -> None:
    """A set-based batch reads its writers' suppressions and recipient buckets in two statements.

    On PostgreSQL the buckets are locked as `_take` would lock them, in key order: they are the
    batch's own until it commits, so what its takes leave in them is written with the batch."""
    buffer = behind(conn)
    emails = sorted({address.lower() for address in addresses if address})
    if buffer is None or not emails:
        return
    found = {email: reason for email, reason in conn.execute(_SUPPRESSIONS, {"emails": emails, "now": utcnow()})}
    buffer.suppressed.update({email: found.get(email) for email in emails})
    keys = [f"rcpt:{email}" for email in emails]
    query = _LOCK_BUCKETS if conn.dialect.name == "postgresql" else _READ_BUCKETS
    rows = {row.key: row for row in conn.execute(query, {"keys": keys})}
    buffer.buckets.update({key: rows.get(key) for key in keys})


def suppress(conn: Connection, config: Config, address: str, reason: str) -> None:
    until = utcnow() + timedelta(days=config.guard.suppression_days)
    address = address.lower()
    buffer = behind(conn)
    if buffer is not None:
        buffer.suppressed[address] = reason[:1000]
    insert_ignore(conn, SUPPRESSION, {"email": address, "reason": reason[:1000], "until": until,
                                      "created_at": utcnow()})
    conn.execute(update(SUPPRESSION).where(SUPPRESSION.c.email == address).values(until=until, reason=reason[:1000]))


class _Bucket(NamedTuple):
    """A bucket as this batch left it, not yet written: what reading it back would give."""

    key: str
    tokens: float
    updated_at: datetime
    tripped_at: datetime | None


def _read_bucket(conn: Connection, key: str, query: Select[Any]) -> tuple[Any, bool]:
    """The bucket, and whether it is known not to exist for the rest of this batch (see below)."""
    buffer = behind(conn)
    if buffer is None:
        return conn.execute(query, {"key": key}).first(), False
    if key in buffer.new_buckets:  # made by this batch: its held values are the row
        return _Bucket(**buffer.new_buckets[key]), False
    if key in buffer.buckets:
        row = buffer.buckets[key]  # read for the batch, or as an earlier take of it left it
        # Nobody else can make a bucket for a ticket of this batch, nor on SQLite any bucket at
        # all while the batch holds the one write lock: those are written with the batch. On
        # PostgreSQL another daemon may make a recipient's bucket before this batch commits;
        # then the batch's insert of it fails, and its rerun item by item takes from that one.
        return row, row is None
    row = conn.execute(query, {"key": key}).first()
    buffer.buckets[key] = row
    return row, False


def _set(conn: Connection, key: str, tokens: float, now: datetime, tripped: datetime | None) -> None:
    """A bucket's new state: written now, or held with the batch's other writes."""
    buffer = behind(conn)
    if buffer is None:
        conn.execute(_SET_BUCKET, {"k": key, "tokens": tokens, "now": now, "tripped": tripped})
        return
    if key in buffer.new_buckets:
        buffer.new_buckets[key] = {"key": key, "tokens": tokens, "updated_at": now, "tripped_at": tripped}
        return
    buffer.bucket_sets[key] = {"k": key, "tokens": tokens, "now": now, "tripped": tripped}
    buffer.buckets[key] = _Bucket(key, tokens, now, tripped)


def _take(conn: Connection, key: str, bucket: Bucket, *, defer: bool = False) -> Verdict:
    now = utcnow()
    query = _LOCK_BUCKET if conn.dialect.name == "postgresql" else _READ_BUCKET
    row, fresh = _read_bucket(conn, key, query)
    if row is None:
        # A first mail to this recipient or ticket: a full bucket, less this mail.
        values: dict[str, Any] = {"key": key, "tokens": bucket.capacity - 1, "updated_at": now, "tripped_at": None}
        buffer = behind(conn)
        if fresh and buffer is not None:
            buffer.new_buckets[key] = values
            return Verdict(True)
        if insert_ignore(conn, BUDGET, values):
            if buffer is not None:  # made and locked by this batch: later takes start from it
                buffer.buckets[key] = _Bucket(**values)
            return Verdict(True)
        row = conn.execute(query, {"key": key}).one()  # another daemon made it meanwhile
    hours = max((now - row.updated_at).total_seconds(), 0) / 3600
    tokens = min(bucket.capacity, row.tokens + hours * bucket.per_hour)
    if tokens >= 1:
        _set(conn, key, tokens - 1, now, None)
        return Verdict(True)
    report = row.tripped_at is None
    reason = f"budget {key} used up ({bucket.capacity:g} at once, {bucket.per_hour:g} per hour)"
    if defer and bucket.per_hour > 0:
        # On credit: due when the bucket would have refilled to one token for this mail.
        due = now + timedelta(hours=(1 - tokens) / bucket.per_hour)
        _set(conn, key, tokens - 1, now, row.tripped_at or now)
        return Verdict(True, reason, report, not_before=due)
    _set(conn, key, tokens, now, row.tripped_at or now)
    return Verdict(False, reason, report)


def allow_automatic(conn: Connection, config: Config, *, to: str, ticket_id: int | None,
                    defer: bool = False) -> Verdict:
    """May we send one more automatic mail to `to` about `ticket_id`? Takes a token if so.

    With `defer` (mail a person's action caused) a used-up budget delays the mail instead:
    the verdict allows it with a `not_before` time.
    """
    reason = suppressed(conn, to)
    if reason is not None:
        return Verdict(False, f"{to} is on the suppression list: {reason}")
    verdict = _take(conn, f"rcpt:{to.lower()}", config.guard.per_recipient, defer=defer)
    if verdict.allowed and ticket_id is not None:
        second = _take(conn, f"ticket:{ticket_id}", config.guard.per_ticket, defer=defer)
        verdict = _later(verdict, second)
    if not verdict.allowed or verdict.not_before is not None:
        level = logging.WARNING if verdict.report else logging.INFO
        what = f"deferred until {verdict.not_before:%Y-%m-%d %H:%M:%S}" if verdict.allowed else "held back"
        log.log(level, "automatic mail to %s (ticket id %s) %s: %s", to, ticket_id, what, verdict.reason)
    return verdict


def _later(first: Verdict, second: Verdict) -> Verdict:
    """Both buckets' verdicts as one: refused if either refuses, else due when both allow."""
    if not second.allowed:
        return second
    dues = [v.not_before for v in (first, second) if v.not_before is not None]
    if not dues:
        return first
    latest = first if first.not_before == max(dues) else second
    return Verdict(True, latest.reason, first.report or second.report, not_before=max(dues))
