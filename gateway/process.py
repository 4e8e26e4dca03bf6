"""The processor: claims batches from the inbound queue and runs each item through the pipeline.

`gateway.pipeline` holds the stages; this module owns the batch around them. PREPARE stages run
before any transaction is open; APPLY stages run inside one write transaction per batch, each
item in its own savepoint, so that one bad message is quarantined and the rest of the batch
still commits. Marking the inbound row done happens in that same transaction, guarded by our
claim token: the ticket, its messages and its outbox rows exist exactly when the item is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, insert, update

from gateway import metrics
from gateway.db.models import utcnow
from gateway.db.queues import INBOUND, claim_inbound, new_claim
from gateway.db.tables import QUARANTINE
from gateway.pipeline import Context, Pipeline, Reject

log = logging.getLogger("gateway.process")
FINISH_INBOUND = (update(INBOUND).where(INBOUND.c.id == bindparam("iid"), INBOUND.c.claim == bindparam("token"))
                  .values(state=bindparam("state"), processed_at=bindparam("now"), lease_until=None,
                          note=bindparam("note")))


class Skip(Exception):
    """The item is no longer ours (its lease expired and another worker took it)."""


Stage = Callable[[Context], None]
DbStage = Callable[[Context, Connection], None]


class Processor:
    """Claims batches from the inbound queue and runs them through the pipeline."""

    def __init__(self, engine: Engine, pipeline: Pipeline, instance: str) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.instance = instance
        self.prepare: tuple[tuple[str, Stage], ...] = (
            ("parse", pipeline.parse),
            ("classify", pipeline.classify),
            ("strip", pipeline.strip),
            ("prove", pipeline.prove),
        )
        self.apply: tuple[tuple[str, DbStage], ...] = (
            ("thread", pipeline.thread),
            ("route", pipeline.route),
            ("apply", pipeline.apply),
        )

    def run_batch(self) -> int:
        """Process one batch; returns how many items were handled (0: the queue is empty)."""
        config = self.pipeline.config.processor
        token = new_claim(self.instance)
        rows = claim_inbound(
            self.engine, token, limit=config.batch_size, lease=timedelta(seconds=config.lease_seconds),
            max_bytes=config.batch_bytes,
        )
        if not rows:
            return 0
        contexts = [self.run_prepare(_context(row, token)) for row in rows]
        started = time.perf_counter()
        with self.engine.begin() as conn:
            for ctx in contexts:
                self._apply_one(conn, ctx)
        log.debug("batch of %d committed in %.1f ms", len(rows), (time.perf_counter() - started) * 1000)
        done_at = utcnow()
        for row, ctx in zip(rows, contexts, strict=True):
            _log_outcome(ctx)
            if not ctx.outcome.startswith("skipped"):
                metrics.processed(row.received_at, done_at)
        return len(rows)

    def run_prepare(self, ctx: Context) -> Context:
        for name, stage in self.prepare:
            ctx.stage = name
            try:
                stage(ctx)
            except Exception as exc:
                ctx.outcome = f"quarantined at {name}: {exc}"
                ctx.reasons.append(_reason(exc))
                return ctx
        ctx.stage = ""
        return ctx

    def run_apply(self, conn: Connection, ctx: Context) -> None:
        """The APPLY stages alone (no inbound bookkeeping): what `postdesk route` dry-runs."""
        for name, stage in self.apply:
            ctx.stage = name
            stage(ctx, conn)
        ctx.stage = ""

    def _apply_one(self, conn: Connection, ctx: Context) -> None:
        if ctx.stage:  # a PREPARE stage failed
            _quarantine(conn, ctx, ctx.stage, ctx.reasons[-1])
            return
        try:
            with conn.begin_nested():
                self.run_apply(conn, ctx)
                _finish(conn, ctx, "done", ctx.outcome)
        except Skip:
            ctx.outcome = "skipped: lease lost"
        except Reject as exc:
            ctx.outcome = f"quarantined by rule: {exc}"
            _quarantine(conn, ctx, "route", str(exc))
        except Exception as exc:
            log.exception("stage %s failed for inbound %d", ctx.stage, ctx.inbound_id)
            ctx.outcome = f"quarantined at {ctx.stage}: {exc}"
            _quarantine(conn, ctx, ctx.stage, _reason(exc))


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _context(row: Row[Any], token: str) -> Context:
    return Context(
        inbound_id=row.id,
        claim=token,
        raw=row.raw,
        mail_from=row.mail_from,
        rcpt_to=[r for r in row.rcpt_to.split(",") if r],
        source=row.source,
    )


def _finish(conn: Connection, ctx: Context, state: str, note: str) -> None:
    result = conn.execute(FINISH_INBOUND, {
        "iid": ctx.inbound_id, "token": ctx.claim, "state": state, "now": utcnow(), "note": note[:500],
    })
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Skip()


def _quarantine(conn: Connection, ctx: Context, stage: str, reason: str) -> None:
    try:
        with conn.begin_nested():
            _finish(conn, ctx, "quarantined", f"{stage}: {reason}")
            conn.execute(insert(QUARANTINE), {"inbound_id": ctx.inbound_id, "stage": stage, "reason": reason,
                                              "created_at": utcnow()})
    except Skip:
        ctx.outcome = "skipped: lease lost"


def _log_outcome(ctx: Context) -> None:
    mid = ctx.parsed.message_id if ctx.parsed else ""
    number = ", ".join(f"#{n}" for n in ctx.ticket_numbers) or "-"
    level = logging.WARNING if ctx.outcome.startswith("quarantined") else logging.INFO
    log.log(level, "inbound %d %s ticket %s message %s: %s", ctx.inbound_id, ctx.kind, number, mid or "(none)", ctx.outcome)


