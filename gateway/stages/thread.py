"""The `thread` stage: which tickets this mail belongs to, and so whose mail it is.

A signed reply address names its ticket; otherwise the subject tag, In-Reply-To, References
and Outlook's Thread-Index do (`gateway.followup`). An agent's address without proof joins
only tickets it takes part in. A customer-kind mail on a ticket becomes an agent's or a third
party's when the prove stage said so.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.followup import ThreadResult, by_token, find_thread, is_participant
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context


def thread(ctx: Context, services: Services, conn: Connection) -> None:
    mail, proof = ctx.mail, ctx.proof
    if ctx.on_behalf is not None:
        ctx.thread = ThreadResult([], "none", f"opened by {mail.from_addr} for {ctx.sender} ({ctx.on_behalf.how})")
        return
    if proof.token is not None:
        ctx.thread = by_token(conn, proof.token.number)
    else:
        ctx.thread = find_thread(conn, tags=services.tags, subject=mail.subject, sender=ctx.sender,
                                 in_reply_to=mail.in_reply_to, references=mail.references,
                                 agent=proof.agent is not None, thread_index_header=mail.header("Thread-Index"))
    if proof.forged:
        # An agent's address without proof is a stranger's: it joins only tickets it takes part in.
        kept = [t for t in ctx.thread.ticket_ids if is_participant(conn, t, ctx.sender)]
        ctx.thread = ThreadResult(kept, ctx.thread.by if kept else "none",
                                  f"{ctx.sender} is an agent's address without proof")
    if ctx.kind == "customer" and ctx.thread.ticket_ids:
        if proof.third_party:
            ctx.kind = "third_party"
        elif proof.agent is not None:
            ctx.kind = "agent"


def names_no_ticket(ctx: Context, services: Services) -> bool:
    """Whether nothing in a customer's mail could name a ticket: no signed reply address, no tag
    in the subject, no In-Reply-To, References or Thread-Index, not written on someone's behalf.
    The stage threads such mail onto nothing without a question to the store, so it opens a
    ticket; the processor runs it apart from mail that may answer one (`gateway.process`)."""
    if ctx.kind != "customer" or ctx.on_behalf is not None or ctx.proof.token is not None:
        return False
    mail = ctx.mail
    return not (mail.in_reply_to or mail.references or mail.header("Thread-Index") or services.tags.find(mail.subject))


STAGE = ItemStage("thread", thread)
