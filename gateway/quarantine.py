"""The quarantine: listing, showing and retrying messages a stage could not handle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from gateway.clock import utcnow
from gateway.db.models import Inbound, Quarantine
from gateway.mail.parse import decode_text


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

    def subject(self) -> str:
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


def _entries(session: Session, *conditions: object) -> list[Entry]:
    query = select(Quarantine, Inbound).join(Inbound, col(Quarantine.inbound_id) == col(Inbound.id))
    for condition in conditions:
        query = query.where(condition)  # type: ignore[arg-type]
    rows = session.exec(query.order_by(col(Quarantine.id).desc())).all()
    return [
        Entry(q.id, q.inbound_id, q.stage, q.reason, q.created_at, q.released_at, i.mail_from, i.rcpt_to, i.raw)  # type: ignore[arg-type]
        for q, i in rows
    ]


def list_entries(engine: Engine, *, include_released: bool = False) -> list[Entry]:
    with Session(engine) as session:
        conditions = [] if include_released else [col(Quarantine.released_at).is_(None)]
        return _entries(session, *conditions)


def get_entry(engine: Engine, entry_id: int) -> Entry | None:
    with Session(engine) as session:
        found = _entries(session, col(Quarantine.id) == entry_id)
        return found[0] if found else None


def retry(engine: Engine, entry_ids: list[int] | None) -> int:
    """Queue the entries' inbound items again; the entries stay, marked as retried."""
    with Session(engine) as session, session.begin():
        query = select(Quarantine).where(col(Quarantine.released_at).is_(None))
        if entry_ids is not None:
            query = query.where(col(Quarantine.id).in_(entry_ids))
        entries = session.exec(query).all()
        now = utcnow()
        for entry in entries:
            entry.released_at = now
            session.add(entry)
            session.execute(
                update(Inbound)
                .where(col(Inbound.id) == entry.inbound_id)
                .values(state="queued", claim=None, lease_until=None, note=f"retried from quarantine {entry.id}")
            )
        return len(entries)
