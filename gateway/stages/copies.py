"""The `copies` stage: which of our mailboxes this delivery still has to be stored for.

The same mail reaches us more than once (one delivery per recipient, a Bcc, a second MX).
An earlier copy of it covers the mailboxes (and departments) it was stored for
(`gateway.copies`); a delivery left with none is settled as a duplicate. Any earlier copy
covers a follow-up.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.copies import earlier_copies
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context, base_mailbox


def copies(ctx: Context, services: Services, conn: Connection) -> None:
    named = [base_mailbox(a) for a in ctx.mail.to + ctx.mail.cc]
    earlier = earlier_copies(conn, ctx.mail.message_id, ctx.mail.body_hash, named, base_mailbox)
    if not earlier.found:
        ctx.fresh = ctx.mailboxes
    elif ctx.threaded:
        # Copies stored for a follow-up carry the ticket's mailbox; any copy covers a follow-up.
        ctx.fresh = []
    else:
        ctx.covered_departments = earlier.departments
        ctx.fresh = [box for box in ctx.mailboxes if box not in earlier.mailboxes]
    if not ctx.fresh:
        ctx.settle("duplicate delivery: already stored")


STAGE = ItemStage("copies", copies)
