"""Claiming work from the inbound queue and the outbox, shared by several daemons.

Both queues use leases: a claim writes a token and an expiry on the rows it takes, and finishing a
row checks that the token is still ours. On PostgreSQL the claim's sub-select uses
`FOR UPDATE SKIP LOCKED`, so daemons sharing one database never take the same row at once; a daemon
that dies leaves leases that expire (or that it releases itself when it comes back under the same
instance name), and the rows go back to work.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, Table, and_, or_, select, update

from gateway.clock import utcnow

# Re-exported: the runners that claim from a queue name its table from here.
from gateway.db.tables import INBOUND as INBOUND
from gateway.db.tables import OUTBOX as OUTBOX
from gateway.db.tables import AnyRow


def new_claim(instance: str) -> str:
    return f"{instance}/{uuid.uuid4().hex[:12]}"


def _claimable(table: Table, state: str, now: datetime) -> ColumnElement[bool]:
    return and_(
        table.c.state == state,
        or_(table.c.lease_until.is_(None), table.c.lease_until < now),
    )


def claim(
    engine: Engine,
    table: Table,
    claim_token: str,
    *,
    limit: int,
    lease: timedelta,
    state: str,
    extra: ColumnElement[bool] | None = None,
) -> list[AnyRow]:
    """Lease up to `limit` rows in `state` to `claim_token` and return them, oldest first."""
    now = utcnow()
    condition = _claimable(table, state, now)
    if extra is not None:
        condition = and_(condition, extra)
    ids = select(table.c.id).where(condition).order_by(table.c.id).limit(limit)
    if engine.dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    stmt = (
        update(table)
        .where(table.c.id.in_(ids.scalar_subquery()))
        .values(claim=claim_token, lease_until=now + lease)
        .returning(*table.c)
    )
    with engine.begin() as conn:
        rows = list(conn.execute(stmt))
    rows.sort(key=lambda r: r.id)
    return rows


def claim_inbound(engine: Engine, token: str, *, limit: int, lease: timedelta,
                  max_bytes: int | None = None) -> list[AnyRow]:
    """Lease up to `limit` queued messages, and no more of them than fit in `max_bytes` of raw.

    A batch is prepared in memory before it is applied, so its size in bytes bounds the
    processor's memory; the first message is always taken, however large, or it would never be.
    """
    if max_bytes is None:
        return claim(engine, INBOUND, token, limit=limit, lease=lease, state="queued")
    now = utcnow()
    sizes = (select(INBOUND.c.id, INBOUND.c.size).where(_claimable(INBOUND, "queued", now))
             .order_by(INBOUND.c.id).limit(limit))
    if engine.dialect.name == "postgresql":
        sizes = sizes.with_for_update(skip_locked=True)
    with engine.begin() as conn:
        taken: list[int] = []
        total = 0
        for row in conn.execute(sizes):
            total += row.size or 0
            if taken and total > max_bytes:
                break
            taken.append(row.id)
        if not taken:
            return []
        stmt = (update(INBOUND).where(INBOUND.c.id.in_(taken), _claimable(INBOUND, "queued", now))
                .values(claim=token, lease_until=now + lease).returning(*INBOUND.c))
        rows = list(conn.execute(stmt))
    rows.sort(key=lambda r: r.id)
    return rows


def release(engine: Engine, table: Table, claim_token: str, *, not_before: datetime | None = None) -> int:
    """Give back the rows a failed batch still holds, at once (or from `not_before`)."""
    with engine.begin() as conn:
        result = conn.execute(
            update(table)
            .where(table.c.claim == claim_token, table.c.state.in_(("queued", "pending")))
            .values(claim=None, lease_until=not_before)
        )
        return int(result.rowcount)


def release_instance(engine: Engine, instance: str) -> tuple[int, int]:
    """Drop the leases an earlier run of this instance held; returns (inbound, outbox) counts."""
    counts = []
    with engine.begin() as conn:
        for table in (INBOUND, OUTBOX):
            result = conn.execute(
                update(table)
                .where(table.c.claim.like(f"{instance}/%"), table.c.state.in_(("queued", "pending")))
                .values(claim=None, lease_until=None)
            )
            counts.append(result.rowcount)
    return counts[0], counts[1]
