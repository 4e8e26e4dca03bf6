"""The `customers` stage (whole batch): who of the batch's senders is a customer, and what language the others write.

It decides nothing. In a set-based run it reads the customer row of every sender of the batch
in one statement, so that the create stage of an item from a known customer reads nothing; and
for senders who are not customers yet it detects the language of their words for all of them
at once (`gateway.i18n.detect.detect_many`, Lingua's threads on both cores), which the create
stage takes when it has to guess a new customer's language. Run item by item, it does nothing:
the create stage reads and detects as it goes.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.i18n.detect import detect_many
from gateway.stages.base import BatchStage, Services
from gateway.stages.context import Context
from gateway.tickets import store


def opening_text(ctx: Context) -> str:
    """The words a new customer's language is told from: the subject and their new text."""
    return f"{' '.join(ctx.subject.split()) or '(no subject)'}\n{ctx.text}"


def customers(contexts: list[Context], services: Services, conn: Connection) -> None:
    buffer = store.behind(conn)
    live = [ctx for ctx in contexts if not ctx.stage and ctx.parsed is not None and ctx.sender]
    if buffer is None or not live:
        return
    known = store.read_customers(conn, [ctx.sender for ctx in live])
    if not services.config.tickets.detect_language:
        return
    directory = services.routing.current.directory
    texts = []
    for ctx in live:
        org = directory.organisation_for(ctx.sender)
        # A known customer has a language, and an organisation's language comes before a guess.
        if known.get(ctx.sender) is None and not (org is not None and org.language):
            texts.append(opening_text(ctx))
    buffer.languages.update(zip(texts, detect_many(texts), strict=True))


STAGE = BatchStage("customers", customers)
