"""The `strip` stage: the writer's new words, apart from quoted history and their signature.

It decides `text` (what the writer wrote now), `body` (the whole plain text), the signature
taken off `text`, and the sanitised HTML, by the quoting heuristics of `gateway.mail.quotes`.
The `known` stage may refine `text` later, against the mail we sent.
"""

from __future__ import annotations

from gateway.mail.htmltext import html_to_text, sanitize_html
from gateway.mail.quotes import reply_of
from gateway.stages.base import PrepareStage, Services
from gateway.stages.context import Context


def strip(ctx: Context, services: Services) -> None:
    mail = ctx.mail
    ctx.body = mail.text_plain.strip() or (html_to_text(mail.text_html) if mail.text_html else "")
    reply = reply_of(mail.text_plain or None, mail.text_html or None, mail.signs_as)
    ctx.text = reply.text.strip() or ctx.body
    ctx.signature = reply.signature if reply.text.strip() else ""
    ctx.html = sanitize_html(mail.text_html) if mail.text_html else ""


STAGE = PrepareStage("strip", strip)
