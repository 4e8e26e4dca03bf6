"""The `known` stage: text we sent, quoted anywhere in a reply, is not the writer's.

It decides the final `text` of a reply on a ticket: the mail it names and our latest mail to
the writer are read from the outbox, and every line of the reply that repeats them goes
(`gateway.mail.known`). An agent's closing stays with their words; their client's block does
not.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, select

from gateway.db.tables import OUTBOX
from gateway.mail import known as matching
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context
from gateway.tickets import store

# How many of our latest mails to the writer a reply may quote.
RECENT = 10
_BY_MESSAGE_ID = select(OUTBOX.c.raw).where(OUTBOX.c.message_id.in_(bindparam("ids", expanding=True)))
_TO_SENDER = (select(OUTBOX.c.raw).where(OUTBOX.c.ticket_id.in_(bindparam("tids", expanding=True)),
                                         OUTBOX.c.rcpt_to == bindparam("to"))
              .order_by(OUTBOX.c.id.desc()).limit(RECENT))


def sent_texts(conn: Connection, *, message_ids: Sequence[str], ticket_ids: Sequence[int], to: str) -> list[str]:
    """The texts of our mail a reply may quote: the mail it names, and our latest mail to the writer."""
    raws: list[bytes] = []
    store.flush_behind(conn, ticket_ids)  # our mail of this batch to the writer counts too
    ids = [mid for mid in dict.fromkeys(message_ids) if mid]
    if ids:
        raws += [row.raw for row in conn.execute(_BY_MESSAGE_ID, {"ids": ids})]
    if ticket_ids and to:
        raws += [row.raw for row in conn.execute(_TO_SENDER, {"tids": list(ticket_ids), "to": to.lower()})]
    return [text for text in (matching.mail_text(raw) for raw in dict.fromkeys(raws)) if text]


def known(ctx: Context, services: Services, conn: Connection) -> None:
    if ctx.on_behalf is not None or not ctx.threaded or ctx.kind not in ("customer", "agent", "third_party"):
        return
    mail = ctx.mail
    sent = sent_texts(conn, message_ids=mail.in_reply_to + mail.references, ticket_ids=ctx.threaded,
                      to=ctx.sender)
    if not sent and ctx.kind == "customer":
        return  # nothing of ours to find: the strip stage's reading stands
    reply = matching.own_reply(mail.text_plain or None, mail.text_html or None, matching.Known.of(sent),
                               mail.signs_as)
    own = reply.text.strip()
    # A customer's reply that is all quote keeps its body; staff text goes out, so never that.
    if own or ctx.kind != "customer":
        ctx.text, ctx.signature = own, reply.signature if own else ""
    if own and ctx.kind != "customer":
        # The agent's own closing goes to the customer with their words; their client's block does not.
        ctx.text = "\n\n".join(part for part in (own, matching.sign_off(reply.signature)) if part)
    if sent:
        ctx.notes.append(f"known text: compared with {len(sent)} mail(s) we sent")


STAGE = ItemStage("known", known)
