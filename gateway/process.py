"""The processor: claims batches from the inbound queue and runs each item through the pipeline.

`gateway.stages` holds the stages and their order; this module owns the batch around them.
Prepare stages run before any transaction is open; then one write transaction per batch runs
the batch stages over the whole batch, and the item stages item by item. Marking the inbound
row done happens in that same transaction, guarded by our claim token: the ticket, its
messages and its outbox rows exist exactly when the item is done.

A batch is run set-based first, optimistically: no savepoint per item, the outbox rows,
outbound copies, event log rows and participants held back and written with one statement per
table (`store.writing_behind`), every item marked done with one statement. Should anything in
it fail, or an item be deferred or refused, that transaction is rolled back and the same
claimed batch is run again item by item, each item in its own savepoint with its writes made
at once, so that one bad message is quarantined alone and the rest of the batch still commits.
A transient database error is not the batch's fault: the batch is given back and retried, as
it always was, never redone at once.

Shared batches stay fair under contention: on PostgreSQL the tickets a batch will touch are
locked first, in id order, so two daemons answering the same tickets wait for each other
instead of deadlocking; a deadlock or lost connection that still happens puts the item (or the
batch) back on the queue with jitter, never in quarantine. A reply whose parent is still queued
(another daemon holds it) waits for it, a bounded number of times (a `Defer` from the stages).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, insert, update

from gateway.clock import utcnow
from gateway.db.engine import snapshot_engine
from gateway.db.queues import claim_inbound, new_claim, release
from gateway.db.retry import is_transient, jitter
from gateway.db.snapshot import ReadSet
from gateway.db.tables import INBOUND, QUARANTINE
from gateway.i18n.detect import warm_up
from gateway.stages.context import Context, Defer, Reject
from gateway.stages.pipeline import Pipeline
from gateway.stages.thread import names_no_ticket
from gateway.tickets import store

log = logging.getLogger("gateway.process")
# After batches that could not stand on a snapshot, at most this many run under the lock in a row.
_MOST_LOCKED_RUNS = 64
# Only a row still queued: one done by a commit whose answer was lost is never done twice.
FINISH_INBOUND = (update(INBOUND).where(INBOUND.c.id == bindparam("iid"), INBOUND.c.claim == bindparam("token"),
                                        INBOUND.c.state == "queued")
                  .values(state=bindparam("state"), processed_at=bindparam("now"), lease_until=None,
                          note=bindparam("note")))


class Skip(Exception):
    """The item is no longer ours (its lease expired and another worker took it)."""


class Processor:
    """Claims batches from the inbound queue and runs them through the pipeline."""

    def __init__(self, engine: Engine, pipeline: Pipeline, instance: str) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.instance = instance
        # Claim tokens of failed batches whose leases could not be given back yet.
        self._unreleased: list[str] = []
        # After a batch failed for a reason of its own: how many batches to take one item at a time.
        self._alone = 0
        # SQLite: a read-only engine on the same file for `_set_on_snapshot` (None: PostgreSQL,
        # whose writers do not queue, or a memory database; `postdesk route` gives no engine),
        # how many batches are still to run under the lock before a snapshot is tried again,
        # and how many the next failure sets.
        self.snapshots = snapshot_engine(engine) if engine is not None else None
        self._locked_runs = 0
        self._backoff = 1
        if pipeline.config.tickets.detect_language:
            # A new customer's language is detected in their text: Lingua's models load on a
            # thread of their own while the rest of the set-up runs (gateway.i18n.detect). Only
            # where mail is processed: a daemon whose processor has its own process holds none.
            warm_up()

    def run_batch(self) -> int:
        """Process one batch; returns how many items were handled (0: the queue is empty)."""
        config = self.pipeline.config.processor
        self._release_leftovers()
        token = new_claim(self.instance)
        limit = 1 if self._alone else config.batch_size
        self._alone = max(self._alone - 1, 0)
        rows = claim_inbound(self.engine, token, limit=limit, lease=timedelta(seconds=config.lease_seconds),
                             max_bytes=config.batch_bytes)
        if not rows:
            return 0
        started = time.perf_counter()
        try:
            contexts = self._attempt(rows, token)
        except Exception as exc:
            if is_transient(exc):
                # Nothing of this batch was committed: its items go back to the queue now, not
                # when the lease runs out.
                self._release(token)
                raise
            return self._poisoned(token, rows, exc)
        log.debug("batch of %d committed in %.1f ms", len(rows), (time.perf_counter() - started) * 1000)
        # Here, not at the top: `postdesk route` runs the stages without batches and counts nothing,
        # so it need not load prometheus-client.
        from gateway import metrics

        done_at = utcnow()
        for row, ctx in zip(rows, contexts, strict=True):
            _log_outcome(ctx)
            if not ctx.outcome.startswith(("skipped", "deferred")):
                metrics.processed(row.received_at, done_at)
        return len(rows)

    def _attempt(self, rows: list[Row[Any]], token: str) -> list[Context]:
        """The batch set-based if it goes through that way, else item by item; its contexts."""
        contexts = [self.run_prepare(_context(row, token)) for row in rows]
        done: dict[int, Context] = {}  # by inbound id: items already committed
        if len(contexts) > 1 and not any(ctx.stage for ctx in contexts):
            try:
                if self._snapshot_due():
                    contexts = self._fresh_on_snapshot(rows, token, contexts, done)
                if contexts:
                    with self.engine.begin() as conn:
                        self._run_set(conn, contexts)
                return _in_order(rows, done, contexts)
            except Exception as exc:
                if is_transient(exc):
                    # The database hiccuped, perhaps during COMMIT: whether it went through is
                    # unknown, so the batch is given back, as any batch would be.
                    raise
                log.info("batch of %d again item by item after %s: %s", len(rows) - len(done), type(exc).__name__,
                         exc)
            # The stages wrote to these contexts: the item run starts again from the mail.
            contexts = [self.run_prepare(_context(row, token)) for row in rows if row.id not in done]
        with self.engine.begin() as conn:
            self._run_batch_stages(conn, contexts)
            for ctx in contexts:
                self._run_item(conn, ctx)
        return _in_order(rows, done, contexts)

    def _fresh_on_snapshot(self, rows: list[Row[Any]], token: str, contexts: list[Context],
                           done: dict[int, Context]) -> list[Context]:
        """SQLite: the batch's mail that names no ticket (new tickets, `thread.names_no_ticket`)
        run on a snapshot and committed (`_set_on_snapshot`), apart from and before the rest;
        what is left for the write lock, prepared afresh where the snapshot's run wrote to it.

        Mail that may answer a ticket updates it at once, which a snapshot refuses; run apart,
        it no longer costs the new mail of its batch the snapshot. Nothing of one part depends
        on the other: new mail opens its own tickets, whatever replies do to theirs."""
        fresh = [ctx for ctx in contexts if names_no_ticket(ctx, self.pipeline)]
        if not fresh:
            return contexts
        if not self._set_on_snapshot(fresh):
            # Only the snapshot's part was run: the rest is as its prepare stages left it.
            ran = {ctx.inbound_id for ctx in fresh}
            again = {row.id: self.run_prepare(_context(row, token)) for row in rows if row.id in ran}
            return [again.get(ctx.inbound_id, ctx) for ctx in contexts]
        done.update((ctx.inbound_id, ctx) for ctx in fresh)
        return [ctx for ctx in contexts if ctx.inbound_id not in done]

    def _set_on_snapshot(self, contexts: list[Context]) -> bool:
        """SQLite: the batch's stages on a read snapshot, outside the one write lock, and only
        their held rows and its `done` written under it, if nothing they read has changed.

        True when the batch is committed. False when its work cannot stand: a stage had to
        write before the end (the read-only snapshot refuses that), or something it read
        changed before the lock was had; the batch then runs under the lock as before, and
        after it the next ones do so at once, a growing number of them, so that mail which
        never fits pays little. A stage's Defer or Reject is raised, as it would be there.
        """
        assert self.snapshots is not None
        reads = ReadSet()
        try:
            with self.snapshots.connect() as snap, snap.begin(), reads.recording(snap):
                with store.writing_behind(snap, len(contexts)) as buffer:
                    self._run_batch_stages(snap, contexts)
                    for ctx in contexts:
                        self.run_item_stages(snap, ctx)
        except (Defer, Reject):
            raise
        except Exception as exc:
            log.debug("batch of %d under the write lock: on the snapshot it met %s: %s", len(contexts),
                      type(exc).__name__, exc)
            self._back_off()
            return False
        with self.engine.begin() as conn:
            stale = not reads.unchanged(conn)
            if not stale:
                with store.carried_on(conn, buffer):
                    store.flush_behind(conn)
                _finish_all(conn, contexts)
        if stale:
            log.debug("batch of %d under the write lock: %d read(s) changed since its snapshot",
                      len(contexts), len(reads))
            self._back_off()
            return False
        self._backoff = 1
        return True

    def _snapshot_due(self) -> bool:
        if self.snapshots is None:
            return False
        if self._locked_runs:
            self._locked_runs -= 1
            return False
        return True

    def _back_off(self) -> None:
        self._locked_runs = self._backoff
        self._backoff = min(self._backoff * 2, _MOST_LOCKED_RUNS)

    def _run_batch_stages(self, conn: Connection, contexts: list[Context]) -> None:
        for batch_stage in self.pipeline.batch:
            batch_stage.run(contexts, self.pipeline, conn)

    def _run_set(self, conn: Connection, contexts: list[Context]) -> None:
        """The whole batch in one go: any exception (a Defer or Reject too) rolls all of it back."""
        with store.writing_behind(conn, len(contexts)):
            self._run_batch_stages(conn, contexts)
            for ctx in contexts:
                self.run_item_stages(conn, ctx)
            store.flush_behind(conn)
        _finish_all(conn, contexts)

    def run_prepare(self, ctx: Context) -> Context:
        """The prepare stages, no database; a failure leaves `ctx.stage` naming the stage."""
        for stage in self.pipeline.prepare:
            ctx.stage = stage.name
            try:
                stage.run(ctx, self.pipeline)
            except Exception as exc:
                ctx.outcome = f"quarantined at {stage.name}: {exc}"
                ctx.reasons.append(_reason(exc))
                return ctx
        ctx.stage = ""
        return ctx

    def run_item_stages(self, conn: Connection, ctx: Context) -> None:
        """The item stages alone (no inbound bookkeeping): what `postdesk route` dry-runs."""
        for stage in self.pipeline.item:
            if stage.wants(ctx):
                ctx.stage = stage.name
                stage.run(ctx, self.pipeline, conn)
        ctx.stage = ""

    def _run_item(self, conn: Connection, ctx: Context) -> None:
        """One item's stages and its `done`, in its own savepoint: its failure is its own."""
        if ctx.stage:  # a prepare stage failed
            _quarantine(conn, ctx, ctx.stage, ctx.reasons[-1])
            return
        try:
            with conn.begin_nested():
                self.run_item_stages(conn, ctx)
                _finish(conn, ctx, "done", ctx.outcome)
        except Skip:
            ctx.outcome = "skipped: lease lost"
        except Defer as exc:
            _defer(conn, ctx, exc)
        except Reject as exc:
            ctx.outcome = f"quarantined by rule: {exc}"
            _quarantine(conn, ctx, "route", str(exc))
        except Exception as exc:
            if is_transient(exc):
                # Another transaction won a race (or the database hiccuped): try it again soon.
                # On a lost connection this write fails too and the whole batch is given back.
                log.warning("inbound %d: transient failure at %s, retrying: %s", ctx.inbound_id, ctx.stage, exc)
                _defer(conn, ctx, Defer(f"retry after {type(exc).__name__}", 1.0, counts=False))
                return
            log.exception("stage %s failed for inbound %d", ctx.stage, ctx.inbound_id)
            ctx.outcome = f"quarantined at {ctx.stage}: {exc}"
            _quarantine(conn, ctx, ctx.stage, _reason(exc))

    def _poisoned(self, token: str, rows: list[Row[Any]], exc: Exception) -> int:
        """A batch failed for a reason of its own: find the one item that causes it.

        The batch's items are given back and the next ones taken one at a time; an item that
        fails alone is quarantined in a transaction of its own or, where even that fails, set
        aside until its lease would have run out, so that it never holds up the others.
        """
        if len(rows) > 1:
            log.error("batch of %d failed (%s: %s); taking the next ones one at a time", len(rows),
                      type(exc).__name__, exc)
            self._alone = len(rows)
            self._release(token)
            return len(rows)
        log.error("inbound %d fails outside its own savepoint: %s: %s", rows[0].id, type(exc).__name__, exc)
        ctx = _context(rows[0], token)
        try:
            with self.engine.begin() as conn:
                _quarantine(conn, ctx, "batch", _reason(exc))
        except Exception as again:
            log.error("inbound %d set aside for %d s: could not quarantine it either (%s)", rows[0].id,
                      self.pipeline.config.processor.lease_seconds, again)
            lease = timedelta(seconds=self.pipeline.config.processor.lease_seconds)
            release(self.engine, INBOUND, token, not_before=utcnow() + lease)
        return 1

    def _release(self, token: str) -> None:
        try:
            release(self.engine, INBOUND, token, not_before=utcnow() + jitter(0.5))
        except Exception as exc:
            log.warning("could not give back the leases of a failed batch yet: %s", exc)
            self._unreleased.append(token)

    def _release_leftovers(self) -> None:
        while self._unreleased:
            release(self.engine, INBOUND, self._unreleased[0])
            self._unreleased.pop(0)


def _in_order(rows: list[Row[Any]], done: dict[int, Context], rest: list[Context]) -> list[Context]:
    """The contexts of both parts of a batch, in the order of its rows."""
    by_id = {**done, **{ctx.inbound_id: ctx for ctx in rest}}
    return [by_id[row.id] for row in rows]


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
        peer=row.peer or "",
        deferrals=row.deferrals,
    )


def _finish(conn: Connection, ctx: Context, state: str, note: str) -> None:
    result = conn.execute(FINISH_INBOUND, {
        "iid": ctx.inbound_id, "token": ctx.claim, "state": state, "now": utcnow(), "note": note[:500],
    })
    if result.rowcount != 1:
        raise Skip()


def _finish_all(conn: Connection, contexts: list[Context]) -> None:
    """Every item of a set-based run done, in one statement; a lost lease sends it item by item."""
    now = utcnow()
    result = conn.execute(FINISH_INBOUND, [
        {"iid": ctx.inbound_id, "token": ctx.claim, "state": "done", "now": now, "note": ctx.outcome[:500]}
        for ctx in contexts])
    if result.rowcount != len(contexts):
        raise Skip()


def _defer(conn: Connection, ctx: Context, defer: Defer) -> None:
    """Back to the queue, claimable again after the (jittered) delay; still ours until then."""
    values: dict[str, Any] = {"claim": None, "lease_until": utcnow() + jitter(defer.delay), "note": str(defer)[:500]}
    if defer.counts:
        values["deferrals"] = INBOUND.c.deferrals + 1
    result = conn.execute(update(INBOUND).where(INBOUND.c.id == ctx.inbound_id, INBOUND.c.claim == ctx.claim)
                          .values(**values))
    ctx.outcome = f"deferred: {defer}" if result.rowcount == 1 else "skipped: lease lost"
    ctx.ticket_numbers.clear()


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
