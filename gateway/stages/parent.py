"""The `parent` stage: whether a mail this one answers is still waiting in the queue.

Asked before threading, not after: the parent's daemon commits its message and its `done`
together, so a parent not queued here has its message visible to the threading that follows;
asked the other way round, a commit between the two reads is missed. After `max_defers` waits
the reply goes its own way, so a parent that never gets processed cannot hold it for ever.
Mail not taken from the queue (`postdesk route`) never waits.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from gateway.db.tables import INBOUND
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context

_PARENT_QUEUED = select(INBOUND.c.id).where(
    INBOUND.c.message_id.in_(bindparam("ids", expanding=True)), INBOUND.c.state == "queued",
    INBOUND.c.id != bindparam("iid")).limit(1)


def parent(ctx: Context, services: Services, conn: Connection) -> None:
    ctx.queued_parent = None
    if ctx.deferrals is None or ctx.deferrals >= services.config.processor.max_defers:
        return
    if ctx.kind != "customer" or ctx.on_behalf is not None:
        return
    wanted = list(dict.fromkeys(ctx.mail.in_reply_to + ctx.mail.references))
    if not wanted:
        return
    found = conn.execute(_PARENT_QUEUED, {"ids": wanted, "iid": ctx.inbound_id}).scalar()
    ctx.queued_parent = int(found) if found is not None else None


STAGE = ItemStage("parent", parent)
