"""The `parse` stage: the raw bytes as a `ParsedMail`, within the configured limits.

It decides what of an oversized message is kept: parts over a cap are cut and noted
(`gateway.mail.limits`), so that the ticket says what is missing.
"""

from __future__ import annotations

from gateway.mail.limits import parse_bounded
from gateway.stages.base import PrepareStage, Services
from gateway.stages.context import NULL_SENDER, Context


def parse(ctx: Context, services: Services) -> None:
    envelope = None if ctx.mail_from in ("", NULL_SENDER) else ctx.mail_from
    ctx.parsed, ctx.held = parse_bounded(ctx.raw, services.limits, envelope=envelope)


STAGE = PrepareStage("parse", parse)
