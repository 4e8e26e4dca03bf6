"""The `staff_reply` stage: an agent working a ticket by mail, or the third party they asked, answering.

The mail is stored on the ticket (internal: the customer never sees an agent's own mail); then
an agent's reply and commands are carried out, all or nothing, and a third party's answer wakes
the ticket (`gateway.agents.desk`). The item is settled here.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context
from gateway.stages.messages import store_mail
from gateway.tickets import store


def staff_reply(ctx: Context, services: Services, conn: Connection) -> None:
    if ctx.kind not in ("agent", "third_party"):
        return
    ticket = store.load(conn, ctx.threaded[0])
    store_mail(ctx, services, conn, ticket.id, ticket.mailbox)
    ctx.ticket_numbers.append(ticket.number)
    events = ctx.acting(services.config)
    if ctx.kind == "third_party":
        ctx.settle(services.desk.third_party_mail(conn, events, ticket, ctx.sender, ctx.text))
        return
    assert ctx.proof.agent is not None
    ctx.settle(services.desk.agent_mail(conn, events, ticket, ctx.proof.agent, text=ctx.text,
                                        message_id=ctx.mail.message_id or None, files=ctx.mail.attachments))


STAGE = ItemStage("staff_reply", staff_reply)
