"""The IMAP import's state in the store: per folder a cursor, per imported UID a row until it is moved.

This module owns the `imapstate` and `imapseen` tables. The cursor (the last UID imported) is
kept with the folder's UIDVALIDITY; a chunk of messages is queued through the inbound writer
together with one `imapseen` row per UID and the new cursor, in one transaction. Those rows stay
pending until the server moved or flagged the messages, so a run cut off in between finishes the
move on its next connection without importing the UIDs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, and_, func, insert, select, update

from gateway.clock import utcnow
from gateway.db.tables import IMAP_SEEN as IMAPSEEN
from gateway.db.tables import IMAP_STATE as IMAPSTATE
from gateway.intake.writer import InboundItem, insert_inbound


@dataclass(frozen=True)
class FolderKey:
    """One folder as the store knows it: its UIDs mean something only with its UIDVALIDITY."""

    account: str
    folder: str
    uidvalidity: int

    def seen(self) -> ColumnElement[bool]:
        return and_(IMAPSEEN.c.account == self.account, IMAPSEEN.c.folder == self.folder,
                    IMAPSEEN.c.uidvalidity == self.uidvalidity)


def _state(account: str, folder: str) -> ColumnElement[bool]:
    return and_(IMAPSTATE.c.account == account, IMAPSTATE.c.folder == folder)


def read_cursor(engine: Engine, account: str, folder: str) -> tuple[int, int] | None:
    """(UIDVALIDITY, last imported UID) as stored, or None before the first import."""
    with engine.connect() as conn:
        row = conn.execute(select(IMAPSTATE.c.uidvalidity, IMAPSTATE.c.last_uid).where(_state(account, folder))).first()
    return (row.uidvalidity, row.last_uid) if row else None


def open_cursor(engine: Engine, key: FolderKey) -> tuple[int, int | None]:
    """The last UID imported under this UIDVALIDITY, and the UIDVALIDITY stored before if it changed."""
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(IMAPSTATE.c.uidvalidity, IMAPSTATE.c.last_uid)
                           .where(_state(key.account, key.folder))).first()
        if row is None:
            conn.execute(insert(IMAPSTATE).values(account=key.account, folder=key.folder,
                                                  uidvalidity=key.uidvalidity, last_uid=0, updated_at=now))
            return 0, None
        if row.uidvalidity == key.uidvalidity:
            return row.last_uid, None
        conn.execute(update(IMAPSTATE).where(_state(key.account, key.folder))
                     .values(uidvalidity=key.uidvalidity, last_uid=0, updated_at=now))
        # The old UIDs name nothing any more: a move still pending under them cannot be done.
        old = FolderKey(key.account, key.folder, row.uidvalidity)
        conn.execute(update(IMAPSEEN).where(old.seen(), IMAPSEEN.c.done.is_(False)).values(done=True))
        return 0, row.uidvalidity


def pending_uids(engine: Engine, key: FolderKey) -> list[int]:
    """UIDs committed to the queue but not yet moved or flagged (the run was interrupted)."""
    with engine.connect() as conn:
        return list(conn.execute(select(IMAPSEEN.c.uid).where(key.seen(), IMAPSEEN.c.done.is_(False))
                                 .order_by(IMAPSEEN.c.uid)).scalars())


def commit_messages(engine: Engine, key: FolderKey, mailbox: str, messages: Sequence[tuple[int, bytes]],
                    cursor: int) -> list[int]:
    """Queue `messages` (UID, raw) for `mailbox`, record their UIDs and move the cursor: one transaction.

    The unique (account, folder, UIDVALIDITY, UID) constraint makes a second import of a UID
    fail the whole transaction, whoever tries it (another daemon on the same database).
    """
    now = utcnow()
    with engine.begin() as conn:
        ids: list[int] = []
        if messages:
            # No envelope: the sender is unknown (""), which is not the null sender of a bounce.
            ids = insert_inbound(conn, [InboundItem(source="imap", mail_from="", rcpt_to=mailbox, raw=raw)
                                        for _uid, raw in messages])
            conn.execute(insert(IMAPSEEN), [
                {"account": key.account, "folder": key.folder, "uidvalidity": key.uidvalidity, "uid": uid,
                 "inbound_id": inbound_id, "done": False, "created_at": now}
                for (uid, _raw), inbound_id in zip(messages, ids, strict=True)
            ])
        conn.execute(update(IMAPSTATE)
                     .where(_state(key.account, key.folder), IMAPSTATE.c.uidvalidity == key.uidvalidity,
                            IMAPSTATE.c.last_uid < cursor)
                     .values(last_uid=cursor, updated_at=now))
        return ids


def mark_done(engine: Engine, key: FolderKey, uids: Sequence[int]) -> None:
    """The UIDs were moved or flagged on the server: nothing left to finish for them."""
    with engine.begin() as conn:
        conn.execute(update(IMAPSEEN).where(key.seen(), IMAPSEEN.c.uid.in_(list(uids))).values(done=True))


def count_pending(engine: Engine, account: str, folder: str, uidvalidity: int) -> int:
    """How many committed UIDs of this folder still wait for their move or flag."""
    key = FolderKey(account, folder, uidvalidity)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(IMAPSEEN)
                                .where(key.seen(), IMAPSEEN.c.done.is_(False))).scalar_one())
