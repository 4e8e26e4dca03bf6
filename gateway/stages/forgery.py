"""The `forgery` stage: mail that names an agent without proof is logged and reported.

It decides nothing about the mail's way (the thread stage already treated it as a stranger's);
the admin hears of it once per sender and day (`gateway.agents.desk`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context


def forgery(ctx: Context, services: Services, conn: Connection) -> None:
    if ctx.proof.forged and ctx.kind == "customer":
        services.desk.report_forgery(conn, ctx.acting(services.config), ctx.proof, ctx.sender, ctx.mail.subject, ctx.inbound_id)


STAGE = ItemStage("forgery", forgery)
