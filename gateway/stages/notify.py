"""The `notify` stage: the events the item's stages caused become mail, in the outbox.

It runs for every item, also one an earlier stage settled (a staff reply's mail is sent
here). It decides nothing itself: the one notify step (`gateway.notify`) renders each event in
order, in the item's savepoint, so mail that a failed item caused is never sent. A
confirmation that went out is listed in `ctx.notifications`, with the language it is in.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context
from gateway.tickets.events import Confirmation


def notify(ctx: Context, services: Services, conn: Connection) -> None:
    sent = services.notifier.send(conn, ctx.events)
    for event, message_id in zip(ctx.events, sent, strict=True):
        if isinstance(event, Confirmation) and message_id:
            ctx.notifications.append({"kind": "confirmation", "to": event.to, "ticket": str(event.ticket.number),
                                      "language": event.language or services.config.tickets.language})
    ctx.events.clear()


STAGE = ItemStage("notify", notify, always=True)
