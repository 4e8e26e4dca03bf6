"""The `announce` stage: the staff who should know of each new ticket are told.

It decides the audience: the department's agents, or the triage people and leads where the
rules say so (`gateway.routing.staff.audience`); the notice names the customer and what was
left out of their mail.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.i18n.catalogues import N_
from gateway.routing.staff import audience
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context
from gateway.tickets import notices, store
from gateway.tickets.events import StaffNotice


def announce(ctx: Context, services: Services, conn: Connection) -> None:
    directory = services.routing.current.directory
    for opened in ctx.opened:
        # The row the create stage made, unless an agent's introduction has been added since.
        made = opened.ticket.row if ctx.on_behalf is None else None
        ticket = made if made is not None else store.load(conn, opened.ticket.id)
        name = opened.customer_name or opened.customer_email
        text = notices.lines(notices.words(N_("New ticket from %(name)s <%(email)s>."), name=name,
                                           email=opened.customer_email), *opened.dropped)
        for agent in audience(services.config, directory, ticket.department):
            ctx.events.append(StaffNotice(ticket, agent.address, "new_ticket", text))


STAGE = ItemStage("announce", announce)
