"""Which ticket a mail belongs to: reply token, subject tag from a participant, In-Reply-To/References.

The order is the design's: a signed reply token > the ticket tag in the subject > Message-IDs
we stored > a new ticket. The token was checked against the sender before this (in
`gateway.agents.proof`); here it only names the ticket. A tag is a number anyone can type, so
it threads only when the sender is already a participant of that ticket (or a proven agent); a
Message-ID we generated is unguessable, so a reference to one threads whoever sends it.

Last comes Outlook's `Thread-Index`: some Outlook replies carry no In-Reply-To or References,
only that header, whose first 22 bytes name the conversation. Our mail to a customer carries
one derived from the secret and the ticket (`thread_index`), and stores its root; a reply whose
root is a ticket's threads there when its sender takes part in that ticket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from gateway.db.tables import MESSAGE, PARTICIPANT, TICKET
from gateway.links.tags import TagFormat
from gateway.tickets.store import holds_participant

FIND_BY_NUMBER = select(TICKET.c.id).where(TICKET.c.number == bindparam("number"))
IS_PARTICIPANT = select(PARTICIPANT.c.id).where(
    PARTICIPANT.c.ticket_id == bindparam("tid"), PARTICIPANT.c.email == bindparam("email"))
FIND_BY_ROOT = select(MESSAGE.c.ticket_id).where(MESSAGE.c.thread_root == bindparam("root")).limit(1)
# Outlook's Thread-Index: 22 bytes of conversation (a reserved byte, a time, a GUID), then 5 per reply.
_ROOT_BYTES = 22
FIND_BY_MESSAGE_IDS = select(MESSAGE.c.message_id, MESSAGE.c.ticket_id).where(
    MESSAGE.c.message_id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class ThreadResult:
    """The tickets a mail belongs to: one, or several when a reply-all answers a fanned-out mail."""

    ticket_ids: list[int]
    by: str  # "token", "subject", "references", "bounce", "none"
    note: str = ""


def is_participant(conn: Connection, ticket_id: int, email: str) -> bool:
    """Whether `email` takes part in the ticket: one this batch made so is held back, not yet a row."""
    if holds_participant(conn, ticket_id, email):
        return True
    return conn.execute(IS_PARTICIPANT, {"tid": ticket_id, "email": email}).first() is not None


def by_token(conn: Connection, number: int) -> ThreadResult:
    ticket_id = conn.execute(FIND_BY_NUMBER, {"number": number}).scalar()
    if ticket_id is None:
        return ThreadResult([], "none", f"reply token for ticket {number}: no such ticket")
    return ThreadResult([ticket_id], "token")


def thread_root(header: str) -> str:
    """The conversation part of a Thread-Index header (hex), or "" when it is not one."""
    try:
        data = base64.b64decode("".join(header.split()), validate=True)
    except (ValueError, binascii.Error):
        return ""
    return data[:_ROOT_BYTES].hex() if len(data) >= _ROOT_BYTES else ""


def thread_index(secret: bytes, number: int) -> tuple[str, str]:
    """The Thread-Index header of our mail about ticket `number`, and its root (hex).

    Keyed by the secret: a root nobody can derive from a ticket number."""
    digest = hmac.new(secret, f"thread-index:{number}".encode(), hashlib.sha256).digest()
    root = b"\x01" + digest[: _ROOT_BYTES - 1]
    return base64.b64encode(root).decode(), root.hex()


def find_thread(conn: Connection, *, tags: TagFormat, subject: str, sender: str,
                in_reply_to: list[str], references: list[str], agent: bool = False,
                thread_index_header: str = "") -> ThreadResult:
    """`agent`: the sender is a proven agent, whose tag threads whether or not they take part."""
    notes: list[str] = []
    for number in tags.find(subject):
        ticket_id = conn.execute(FIND_BY_NUMBER, {"number": number}).scalar()
        if ticket_id is None:
            notes.append(f"tag {number}: no such ticket")
            continue
        if agent or is_participant(conn, ticket_id, sender):
            return ThreadResult([ticket_id], "subject")
        notes.append(f"tag {number}: {sender} is not a participant")
    # In-Reply-To names the message answered; References is the whole chain. A mail that went
    # to two of our addresses lives on two tickets, so a reply-all to it belongs to both: take
    # every ticket any referenced Message-ID is on, each once.
    wanted = list(dict.fromkeys(in_reply_to + list(reversed(references))))
    if wanted:
        found = [row.ticket_id for row in conn.execute(FIND_BY_MESSAGE_IDS, {"ids": wanted})]
        if found:
            return ThreadResult(sorted(set(found)), "references", "; ".join(notes))
    root = thread_root(thread_index_header) if thread_index_header else ""
    ticket_id = conn.execute(FIND_BY_ROOT, {"root": root}).scalar() if root else None
    if ticket_id is not None:
        if agent or is_participant(conn, ticket_id, sender):
            return ThreadResult([ticket_id], "thread-index", "; ".join(notes))
        notes.append(f"Thread-Index of a ticket: {sender} is not a participant")
    return ThreadResult([], "none", "; ".join(notes))
