"""The `lock` stage (whole batch): every existing ticket the batch will write to, locked in id order.

Rows locked in batch order deadlock as soon as two daemons hold replies to the same two
tickets in opposite orders; one fixed order makes the second wait instead. Threading is only
read here (and run again, item by item, by the thread stage). SQLite has one writer at a
time: nothing to order there. In a set-based run (the batch writing behind) threading runs
without a savepoint per item: a failure there fails the run, which is redone item by item.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from sqlalchemy import Connection, select

from gateway.db.retry import is_transient
from gateway.db.tables import TICKET
from gateway.stages.base import BatchStage, Services
from gateway.stages.context import Context
from gateway.stages.thread import thread
from gateway.tickets import store


def lock(contexts: list[Context], services: Services, conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        return
    ids: set[int] = set()
    alone = store.behind(conn) is None
    for ctx in contexts:
        if ctx.stage:  # a prepare stage failed: it goes to quarantine
            continue
        kind = ctx.kind
        try:
            savepoint: AbstractContextManager[object] = conn.begin_nested() if alone else nullcontext()
            with savepoint:
                thread(ctx, services, conn)
            ids.update(ctx.threaded)
        except Exception as exc:
            if is_transient(exc) or not alone:
                raise
            # A mail that cannot be threaded fails again in its own run, and is quarantined
            # there with the reason.
        finally:
            ctx.thread, ctx.kind = None, kind
    if ids:
        conn.execute(select(TICKET.c.id).where(TICKET.c.id.in_(sorted(ids))).order_by(TICKET.c.id)
                     .with_for_update())


STAGE = BatchStage("lock", lock)
