"""The `classify` stage: what kind of mail this is, and whether it may get an automatic answer.

A customer's mail, an auto-reply, a bounce (with its report) or our own mail coming back
(a loop), by `gateway.mail.classify`. A customer's mail without any sender is quarantined:
it could be neither answered nor threaded.
"""

from __future__ import annotations

from gateway.mail.classify import classify as classify_mail
from gateway.mail.compose import LOOP_HEADER
from gateway.stages.base import PrepareStage, Services
from gateway.stages.context import NULL_SENDER, Context


def classify(ctx: Context, services: Services) -> None:
    mail_from = None if ctx.mail_from == "" else ("" if ctx.mail_from == NULL_SENDER else ctx.mail_from)
    result = classify_mail(ctx.mail.message, mail_from=mail_from,
                           own_domains=frozenset({services.config.message_id_domain.lower()}),
                           loop_header=LOOP_HEADER, loop_token=services.loop_token)
    ctx.kind, ctx.reasons, ctx.bounce = result.kind, list(result.reasons), result.bounce
    ctx.may_auto_answer, ctx.no_answer_reasons = result.may_auto_answer, list(result.no_answer_reasons)
    # A bounce or an auto-reply without a sender is normal; a customer's mail needs one to
    # be answered and threaded.
    if ctx.kind == "customer" and not ctx.sender:
        raise ValueError("no sender: neither a From address nor an envelope sender")


STAGE = PrepareStage("classify", classify)
