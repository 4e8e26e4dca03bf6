"""The admin's view of the outbox: listing mail by state, showing one, and requeueing dead mail.

The sender (`gateway.outbox`) marks a mail `dead` when the relay refused it for good or it ran
out of attempts; the reason stays in `last_error`. Once the cause is fixed (the relay is back,
the address corrected at the relay, a policy changed), `retry` puts dead mail back in the queue
with its attempts reset, and the next round of the sender delivers it. Only dead mail is
requeued: pending mail is on its way already and sent mail must never go out twice.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from typing import Any

from sqlalchemy import Engine, Row, select, update

from gateway.clock import utcnow
from gateway.db.tables import OUTBOX

STATES = ("dead", "pending", "sent")


@dataclass(frozen=True)
class Mail:
    id: int
    created_at: datetime
    kind: str
    state: str
    rcpt_to: str
    attempts: int
    last_error: str
    ticket_id: int | None
    message_id: str
    raw: bytes

    @classmethod
    def of(cls, row: Row[Any]) -> Mail:
        return cls(row.id, row.created_at, row.kind, row.state, row.rcpt_to, row.attempts, row.last_error,
                   row.ticket_id, row.message_id, row.raw)

    def subject(self) -> str:
        # The header block alone: a list of 50 mails need not parse 50 bodies and attachments.
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(self.raw)
        return str(headers.get("Subject", "(no subject)"))

    def line(self) -> str:
        error = f": {self.last_error[:80]}" if self.last_error else ""
        return (f"{self.id:>6}  {self.created_at:%Y-%m-%d %H:%M}  {self.state:<7} {self.kind:<14} "
                f"to {self.rcpt_to}  {self.subject()[:50]!r}  {self.attempts} attempt(s){error}")

    def details(self) -> str:
        """The outbox row, then the mail's headers and its text as the recipient would read it."""
        message = email.message_from_bytes(self.raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        headers = [f"{name}: {value}" for name, value in message.items()]
        return "\n".join([
            f"mail:      {self.id} ({self.kind}, {len(self.raw)} bytes, ticket id {self.ticket_id or '-'})",
            f"state:     {self.state} after {self.attempts} attempt(s)",
            f"created:   {self.created_at:%Y-%m-%d %H:%M:%S} UTC",
            f"to:        {self.rcpt_to}",
            f"error:     {self.last_error or '-'}",
            "",
            *headers,
            "",
            text.rstrip(),
        ])


def list_mail(engine: Engine, *, state: str | None = "dead", to: str | None = None, kind: str | None = None,
              limit: int = 50) -> list[Mail]:
    """Outbox mail, newest first; `state` None for every state."""
    query = select(OUTBOX).order_by(OUTBOX.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(OUTBOX.c.state == state)
    if to:
        query = query.where(OUTBOX.c.rcpt_to == to.strip().lower())
    if kind:
        query = query.where(OUTBOX.c.kind == kind)
    with engine.connect() as conn:
        return [Mail.of(row) for row in conn.execute(query)]


def get_mail(engine: Engine, mail_id: int) -> Mail | None:
    with engine.connect() as conn:
        row = conn.execute(select(OUTBOX).where(OUTBOX.c.id == mail_id)).first()
    return Mail.of(row) if row is not None else None


def retry(engine: Engine, mail_ids: list[int] | None) -> list[int]:
    """Requeue dead mail (the ids named, or all of it); returns the ids requeued."""
    condition = OUTBOX.c.state == "dead"
    if mail_ids is not None:
        condition = condition & OUTBOX.c.id.in_(mail_ids)
    with engine.begin() as conn:
        ids = [row.id for row in conn.execute(select(OUTBOX.c.id).where(condition).order_by(OUTBOX.c.id))]
        if ids:
            # Attempts start again from zero: the backoff of the old failures says nothing now.
            conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids), OUTBOX.c.state == "dead").values(
                state="pending", attempts=0, next_attempt_at=utcnow(), claim=None, lease_until=None))
    return ids
