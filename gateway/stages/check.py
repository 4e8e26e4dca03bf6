"""The `check` stage: what a parsed message must satisfy before any of it reaches the database.

It runs after classification, without a database. A customer's From address that no relay
would take (a control character, a NUL, an address longer than SMTP allows) sends the message
to quarantine with the reason: it could never be answered, and written into the outbox it
would break the sender's connection for other customers' mail. In automatic mail such an
address is only dropped. Message-IDs and display names are made storable alike on SQLite and
PostgreSQL (`gateway.validate`).
"""

from __future__ import annotations

from gateway.stages.base import PrepareStage, Services
from gateway.stages.context import NULL_SENDER, Context
from gateway.validate import address_problem, storable_message_id, storable_text

# The stored length of a customer's name (`customer.name`).
NAME_LENGTH = 200


def check(ctx: Context, services: Services) -> None:
    mail = ctx.mail
    mail.message_id = storable_message_id(mail.message_id) if mail.message_id else ""
    mail.in_reply_to = [storable_message_id(mid) for mid in mail.in_reply_to]
    mail.references = [storable_message_id(mid) for mid in mail.references]
    mail.from_name = storable_text(mail.from_name, NAME_LENGTH)
    mail.to = [address for address in mail.to if address_problem(address) is None]
    mail.cc = [address for address in mail.cc if address_problem(address) is None]
    if ctx.mail_from not in ("", NULL_SENDER) and address_problem(ctx.mail_from):
        ctx.mail_from = ""  # an unusable envelope sender says nothing; the From header decides
    problem = address_problem(mail.from_addr) if mail.from_addr else None
    if problem is None:
        return
    if ctx.kind == "customer":
        raise ValueError(f"From address {mail.from_addr!r} cannot be answered: {problem}")
    mail.from_addr = ""


STAGE = PrepareStage("check", check)
