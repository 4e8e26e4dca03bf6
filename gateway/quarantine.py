"""The quarantine: listing, showing and retrying messages a stage could not handle.

Core statements on the `quarantine` and `inbound` tables (as `gateway.outboxadmin` reads the
outbox): the commands read a few rows once, and need neither the ORM's session nor the mail parser
until a subject is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, select, update

from gateway.clock import utcnow
from gateway.db.tables import INBOUND, QUARANTINE


@dataclass(frozen=True)
class Entry:
    id: int
    inbound_id: int
    stage: str
    reason: str
    created_at: datetime
    released_at: datetime | None
    mail_from: str
    rcpt_to: str
    raw: bytes

    @classmethod
    def of(cls, row: Row[Any]) -> Entry:
        return cls(row.id, row.inbound_id, row.stage, row.reason, row.created_at, row.released_at, row.mail_from,
                   row.rcpt_to, row.raw)

    def subject(self) -> str:
        from gateway.mail.parse import decode_text

        head = self.raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
        for line in head.splitlines():
            if line.lower().startswith(b"subject:"):
                return decode_text(line[8:].decode("utf-8", "replace").strip())
        return "(no subject)"

    def line(self) -> str:
        state = f" retried {self.released_at:%Y-%m-%d %H:%M}" if self.released_at else ""
        return (f"{self.id:>6}  {self.created_at:%Y-%m-%d %H:%M}  {self.stage:<8} "
                f"from {self.mail_from or '<>'}  {self.subject()[:50]!r}: {self.reason[:80]}{state}")

    def details(self) -> str:
        preview = self.raw[:2000].decode("utf-8", "replace")
        return "\n".join([
            f"entry:     {self.id} (inbound {self.inbound_id}, {len(self.raw)} bytes)",
            f"when:      {self.created_at:%Y-%m-%d %H:%M:%S} UTC",
            f"stage:     {self.stage}",
            f"reason:    {self.reason}",
            f"envelope:  from {self.mail_from or '<>'} to {self.rcpt_to}",
            f"retried:   {self.released_at or 'no'}",
            "",
            preview,
        ])


_ENTRIES = (select(QUARANTINE, INBOUND.c.mail_from, INBOUND.c.rcpt_to, INBOUND.c.raw)
            .join(INBOUND, QUARANTINE.c.inbound_id == INBOUND.c.id).order_by(QUARANTINE.c.id.desc()))


def _entries(engine: Engine, *conditions: ColumnElement[bool]) -> list[Entry]:
    with engine.connect() as conn:
        return [Entry.of(row) for row in conn.execute(_ENTRIES.where(*conditions))]


def list_entries(engine: Engine, *, include_released: bool = False) -> list[Entry]:
    return _entries(engine, *([] if include_released else [QUARANTINE.c.released_at.is_(None)]))


def get_entry(engine: Engine, entry_id: int) -> Entry | None:
    found = _entries(engine, QUARANTINE.c.id == entry_id)
    return found[0] if found else None


def retry(engine: Engine, entry_ids: list[int] | None) -> int:
    """Queue the entries' inbound items again; the entries stay, marked as retried."""
    query = select(QUARANTINE.c.id, QUARANTINE.c.inbound_id).where(QUARANTINE.c.released_at.is_(None))
    if entry_ids is not None:
        query = query.where(QUARANTINE.c.id.in_(entry_ids))
    with engine.begin() as conn:
        entries = conn.execute(query).all()
        now = utcnow()
        for entry in entries:
            conn.execute(update(QUARANTINE).where(QUARANTINE.c.id == entry.id).values(released_at=now))
            conn.execute(update(INBOUND).where(INBOUND.c.id == entry.inbound_id).values(
                state="queued", claim=None, lease_until=None, note=f"retried from quarantine {entry.id}"))
        return len(entries)
