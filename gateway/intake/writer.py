"""The one writer of inbound rows: what every intake (SMTP, IMAP, the MTA pipe) stores, and how.

`insert_inbound` turns handed-over messages into `inbound` rows (receipt time, size, the
Message-ID the processor looks for duplicates by, state `queued`) inside the caller's
transaction; `enqueue_inbound` is the same in a transaction of its own (the pipe, tests).
IMAP calls `insert_inbound` in the transaction that also moves its cursor.

`GroupWriter` is the SMTP side: a per-message commit costs one fsync each; under load the
handler instead hands its message to this writer and awaits a future. The writer takes
everything that is waiting, inserts it in one transaction on the database thread, and resolves
each future only after the commit returned, so that a 250 still means "committed".

One bad message must not cost the others their 250: when the group's transaction fails, each
message is tried again in a transaction of its own, so only the one that fails gets the error
(and its client a 451); the others are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import NotRequired, TypedDict

from sqlalchemy import Connection, Engine, insert

from gateway.clock import utcnow
from gateway.db.normalise import raw_message_id
from gateway.db.tables import INBOUND

log = logging.getLogger("gateway.intake")


class InboundItem(TypedDict):
    """One message as an intake hands it over: the envelope as far as known, and the raw bytes."""

    source: str  # "smtp", "imap", "pipe"
    mail_from: str  # "<>" the null sender, "" unknown (no envelope)
    rcpt_to: str  # our mailboxes, comma-separated
    raw: bytes
    # The SMTP client's IP address: whose Authentication-Results may be believed.
    peer: NotRequired[str]


def insert_inbound(conn: Connection, items: Sequence[InboundItem]) -> list[int]:
    """Insert `items` as queued rows in the caller's transaction; their ids, in the items' order."""
    now = utcnow()
    rows = [{"received_at": now, "state": "queued", "note": "", "peer": "", **item,
             "size": len(item["raw"]), "message_id": raw_message_id(item["raw"])} for item in items]
    # Ordered, so that a caller can pair each id with what it handed over (futures, IMAP UIDs).
    result = conn.execute(insert(INBOUND).returning(INBOUND.c.id, sort_by_parameter_order=True), rows)
    return [int(row_id) for row_id in result.scalars()]


def enqueue_inbound(engine: Engine, items: Sequence[InboundItem]) -> list[int]:
    """Insert raw messages in one transaction of their own; returns their ids once committed."""
    with engine.begin() as conn:
        return insert_inbound(conn, items)


Waiting = tuple[InboundItem, "asyncio.Future[int]"]


class GroupWriter:
    """SMTP's group commit: everything handed over while the last commit ran goes in the next."""

    def __init__(
        self,
        engine: Engine,
        executor: Executor,
        *,
        on_commit: Callable[[], None] = lambda: None,
        max_batch: int = 256,
    ) -> None:
        self._engine = engine
        self._executor = executor
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Waiting] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="intake-writer")

    async def submit(self, item: InboundItem) -> int:
        """Queue one message (inbound row values) and return its id once it is committed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < self._max_batch:
                batch.append(self._queue.get_nowait())
            items = [item for item, _ in batch]
            try:
                ids = await loop.run_in_executor(self._executor, enqueue_inbound, self._engine, items)
            except Exception as exc:
                log.warning("group commit of %d inbound message(s) failed, storing them one by one: %s",
                            len(batch), exc)
                await self._one_by_one(batch)
                continue
            for (_, future), row_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(row_id)
            self._on_commit()

    async def _one_by_one(self, batch: list[Waiting]) -> None:
        loop = asyncio.get_running_loop()
        stored = 0
        for item, future in batch:
            try:
                [row_id] = await loop.run_in_executor(self._executor, enqueue_inbound, self._engine, [item])
            except Exception as exc:
                log.error("could not store an inbound message from %s to %s: %s", item["mail_from"],
                          item["rcpt_to"], exc)
                if not future.done():
                    future.set_exception(exc)
                continue
            stored += 1
            if not future.done():
                future.set_result(row_id)
        if stored:
            self._on_commit()

    async def close(self) -> None:
        """Let every message already handed over be committed, then stop."""
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        if self._task is not None:
            # Give the batch in progress time to finish its commit before cancelling the loop.
            await asyncio.sleep(0)
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
