"""The `postmaster` stage: mail to `postmaster@` our domain goes to the admin, never to a ticket.

It decides which recipients are the postmaster's: their copy is forwarded (`gateway.postmaster`)
and the item is settled when nobody else was addressed; other recipients go on through the
stages as any mail does.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context


def postmaster(ctx: Context, services: Services, conn: Connection) -> None:
    taken = services.postmaster.take(conn, rcpt_to=ctx.rcpt_to, kind=ctx.kind, raw=ctx.raw,
                                     sender=ctx.mail.from_addr or ctx.mail_from, inbound_id=ctx.inbound_id)
    if taken is None:
        return
    ctx.rcpt_to, note = taken
    ctx.notes.append(note)
    ctx.outcome = note
    if not ctx.rcpt_to:
        ctx.settled = True


STAGE = ItemStage("postmaster", postmaster)
