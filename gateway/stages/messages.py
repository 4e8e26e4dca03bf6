"""Not a stage: how the stages that write store the inbound mail on a ticket.

The staff-reply, follow-up and create stages all keep the mail as a message of its ticket,
with its attachments and the trace of what the stages decided.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from gateway.clock import utcnow
from gateway.stages.base import Services
from gateway.stages.context import Context
from gateway.tickets import notices, store


def message_values(ctx: Context, mailbox: str) -> dict[str, Any]:
    mail = ctx.mail
    # An agent's own mail and a third party's answer are for staff; the customer sees the
    # reply the agent's mail produced, sent from our mailbox.
    visibility = "internal" if ctx.kind in ("agent", "third_party") else "public"
    return {"direction": "in", "kind": ctx.kind, "author": ctx.sender, "message_id": mail.message_id,
            "visibility": visibility,
            "subject": mail.subject, "text": ctx.text, "body": ctx.body, "html": ctx.html,
            "html_sanitised": bool(ctx.html),
            "signature": ctx.signature,
            "body_hash": mail.body_hash, "thread_by": ctx.thread.by if ctx.thread else "",
            "inbound_id": ctx.inbound_id, "mailbox": mailbox,
            "trace": json.dumps(ctx.trace(), ensure_ascii=False)}


def store_mail(ctx: Context, services: Services, conn: Connection, ticket_id: int, mailbox: str, *,
               first: bool = False) -> list[str]:
    """Store the message on the ticket; returns what was left out (attachments over the limit).

    `first`: the mail that opened the ticket, which was made up to date with it."""
    values = {**message_values(ctx, mailbox), "created_at": utcnow()}
    row = store.add_message(conn, ticket_id, values, touch=not first)
    notes = ctx.held + store.store_attachments(conn, row, ctx.mail.attachments,
                                               services.config.attachments.max_size)
    if first and not ctx.mail.attachments:
        notices.opened_with(conn, ticket_id, row, values)
    for note in notes:
        store.add_event(conn, ticket_id, "note", actor="postdesk", detail=note)
    ctx.notes.extend(notes)
    return notes
