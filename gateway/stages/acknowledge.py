"""The `acknowledge` stage: the customer's confirmation of each ticket their mail opened.

It decides whether a confirmation is asked for: only where routing wants one and the mail may
get an automatic answer (not a list's, not a robot's); the suppression list and the mail
budgets may still hold it back when the notify stage sends it. It answers the customer's own
mail, never the mail of an agent who passed it on, and names what was missing or left out.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context, Opened
from gateway.tickets.events import Confirmation


def acknowledge(ctx: Context, services: Services, conn: Connection) -> None:
    for opened in ctx.opened:
        if not opened.opening.decision.confirm:
            continue
        if not ctx.may_auto_answer:
            ctx.notes.append(f"no confirmation: {'; '.join(ctx.no_answer_reasons)}")
            continue
        ctx.events.append(_confirmation(ctx, services, opened))


def _confirmation(ctx: Context, services: Services, opened: Opened) -> Confirmation:
    mail, decision = ctx.mail, opened.opening.decision
    labels = {f.name: f.label for f in services.routing.current.directory.fields.values()}
    # The customer's confirmation answers their own mail: never an agent's that passed it on.
    answers = (ctx.on_behalf.message_id if ctx.on_behalf is not None else mail.message_id) or None
    limit = services.config.attachments.max_size
    return Confirmation(
        opened.ticket, to=opened.customer_email, customer_name=opened.customer_name, language=opened.language,
        mailbox=opened.opening.mailbox, in_reply_to=answers,
        references=[] if ctx.on_behalf is not None else mail.references,
        missing=[labels.get(m, m) for m in decision.missing_fields],
        linked_number=opened.opening.linked_number,
        dropped=[item.filename for item in mail.attachments if len(item.payload) > limit],
    )


STAGE = ItemStage("acknowledge", acknowledge)
