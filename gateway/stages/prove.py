"""The `prove` stage: whether the mail is an agent's or an invited third party's, and what it proves.

A signed reply address, DKIM or our own MTA's hand-over make an agent's mail proven
(`gateway.agents.proof`); an agent's address without proof is marked forged. A proven agent's
fresh mail to support@ may open a ticket for a customer ("on behalf"): then the stored text is
the customer's words only.
"""

from __future__ import annotations

from gateway.agents.behalf import forwarded, on_behalf
from gateway.stages.base import PrepareStage, Services
from gateway.stages.context import Context


def prove(ctx: Context, services: Services) -> None:
    if ctx.kind == "loop" or not ctx.mail.from_addr:
        return
    mail = ctx.mail
    ctx.proof = services.prover.prove(ctx.raw, mail.message, mail.from_addr, ctx.rcpt_to + mail.to + mail.cc,
                                      peer=ctx.peer)
    if ctx.kind != "customer" or ctx.proof.agent is None or ctx.proof.token is not None:
        return
    ctx.on_behalf = on_behalf(ctx.text, mail.subject) or forwarded(mail, ctx.body)
    if ctx.on_behalf is not None:
        # The stored message is the customer's words only: not the agent's mail around them.
        ctx.text = ctx.body = ctx.on_behalf.text or "(no text)"
        ctx.html = ctx.signature = ""


STAGE = PrepareStage("prove", prove)
