"""The `bounce` stage: a delivery report is recorded, and a hard bounce suppresses its address.

It decides which ticket a bounce belongs to when threading found none (the outbox row with the
report's original Message-ID) and which recipients are suppressed (hard failures only,
`gateway.guard`). A bounce never opens a ticket; the follow-up stage appends it to its ticket.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, insert, select

from gateway.clock import utcnow
from gateway.db.tables import BOUNCE, OUTBOX
from gateway.followup import ThreadResult
from gateway.guard import suppress
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context

_SENT_AS = select(OUTBOX.c.ticket_id).where(OUTBOX.c.message_id == bindparam("mid"))
_INSERT_BOUNCE = insert(BOUNCE)


def bounce(ctx: Context, services: Services, conn: Connection) -> None:
    report = ctx.bounce
    if ctx.kind != "bounce" or report is None:
        return
    ticket_id = None
    if report.original_message_id:
        ticket_id = conn.execute(_SENT_AS, {"mid": report.original_message_id}).scalar()
    if ticket_id is not None and ctx.thread is not None and not ctx.thread.ticket_ids:
        ctx.thread = ThreadResult([ticket_id], "bounce", "original Message-ID in the report")
    for failed in report.recipients:
        conn.execute(_INSERT_BOUNCE, {
            "inbound_id": ctx.inbound_id, "recipient": failed.address, "status": failed.status,
            "hard": failed.hard, "diagnostic": failed.diagnostic[:1000],
            "original_message_id": report.original_message_id, "ticket_id": ticket_id, "created_at": utcnow(),
        })
        if failed.hard:
            suppress(conn, services.config, failed.address,
                     f"hard bounce {failed.status or failed.smtp_code}: {failed.diagnostic[:200]}")
            ctx.notes.append(f"{failed.address} suppressed after a hard bounce ({failed.status})")
    ctx.outcome = f"bounce recorded for {', '.join(f.address for f in report.recipients) or 'unknown recipient'}"


STAGE = ItemStage("bounce", bounce)
