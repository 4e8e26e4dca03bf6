"""Group commit for intake: many waiting messages, one transaction, then every 250 at once.

A per-message commit costs one fsync each; under load the handler instead hands its message to
this writer and awaits a future. The writer takes everything that is waiting, inserts it in one
transaction on the database thread, and resolves each future only after the commit returned, so
that a 250 still means "committed".

One bad message must not cost the others their 250: when the group's transaction fails, each
message is tried again in a transaction of its own, so only the one that fails gets the error
(and its client a 451); the others are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from sqlalchemy import Engine

from gateway.db.queues import enqueue_inbound

log = logging.getLogger("gateway.intake")


class GroupWriter:
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
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[int]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="intake-writer")

    async def submit(self, item: dict[str, Any]) -> int:
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

    async def _one_by_one(self, batch: list[tuple[dict[str, Any], asyncio.Future[int]]]) -> None:
        loop = asyncio.get_running_loop()
        stored = 0
        for item, future in batch:
            try:
                [row_id] = await loop.run_in_executor(self._executor, enqueue_inbound, self._engine, [item])
            except Exception as exc:
                log.error("could not store an inbound message from %s to %s: %s", item.get("mail_from"),
                          item.get("rcpt_to"), exc)
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
