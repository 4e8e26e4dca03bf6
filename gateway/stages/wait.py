"""The `wait` stage: a reply that threads nowhere yet, to a mail still queued, waits for it.

It decides to defer (`Defer`): the item goes back to the queue for `defer_seconds`, and the
processor counts the wait towards `max_defers`.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context, Defer


def wait(ctx: Context, services: Services, conn: Connection) -> None:
    if ctx.queued_parent is None or ctx.kind != "customer" or ctx.threaded:
        return
    raise Defer(f"waiting for inbound {ctx.queued_parent}, which it answers",
                services.config.processor.defer_seconds)


STAGE = ItemStage("wait", wait)
