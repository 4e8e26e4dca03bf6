"""Staff notices in the reader's words: SLA clocks, stale tickets and the daily digest.

`gateway.tickets.explain` is the operators' line (logs, the event log, `ticket show`); this
module says the same to a person in their language and time zone, through the catalogues and
Babel: "tilldelning överskreds 2026-12-02 10:00 CET: 2 timmar arbetstid (kalender ro-office)
från 2026-11-30 16:00 CET, 1 timme använd". Every function takes the reader's language and zone.
It also owns the ticket history a staff notice quotes (`history`), read once per notify step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from babel.lists import format_list
from sqlalchemy import Connection, Row, bindparam, select

from gateway.db.normalise import as_stored
from gateway.db.rows import TicketRow
from gateway.db.tables import ATTACHMENT, MESSAGE, MESSAGE_ATTACHMENT
from gateway.i18n import formats
from gateway.i18n.catalogues import N_, gettext
from gateway.i18n.formats import locale_of, span, when
from gateway.tickets import kinds, store
from gateway.tickets.lifecycle import Status, display_name
from gateway.tickets.sla import ClockState, TargetClock

# A notice's text, written when the recipient's language and time zone are known.
Text = Callable[[str, str], str]

# The titles of staff notices (`gateway.notify._title` of the event), marked for the catalogues.
TITLES = (
    N_("SLA breached"), N_("SLA breach escalated"), N_("SLA warning"), N_("Stale ticket"), N_("Daily digest"),
    N_("New ticket"), N_("Assigned to you"), N_("New in your department"), N_("Customer replied"), N_("Reopened"),
)

TARGETS = {
    "assign": N_("assignment"),
    "first_response": N_("first response"),
    "resolution": N_("resolution"),
}


def words(message: str, **values: Any) -> Text:
    """A notice that is `message` (marked with N_) in the recipient's language, values filled in."""
    def text(lang: str, zone: str) -> str:
        return gettext(lang, message, **values)
    return text


def target_name(name: str, lang: str) -> str:
    return gettext(lang, TARGETS[name]) if name in TARGETS else name


def explain_in(clock: TargetClock, lang: str, zone: str) -> str:
    """Where one target stands and why its due time is what it is, for a person."""
    values: dict[str, Any] = {
        "target": target_name(clock.name, lang),
        "total": span(clock.target, lang),
        "used": span(clock.elapsed, lang),
        "start": when(clock.started_at, lang, zone),
        "kind": gettext(lang, "clock time") if clock.always_open
        else gettext(lang, "business time (calendar %(calendar)s)", calendar=clock.calendar),
    }
    if clock.state is ClockState.STOPPED:
        text = gettext(lang, "%(target)s stopped, the ticket is resolved or closed: %(used)s of %(total)s "
                             "used", **values)
    elif clock.state is ClockState.MET:
        text = gettext(lang, "%(target)s met %(when)s: %(used)s of %(total)s %(kind)s used since %(start)s",
                       when=when(clock.met_at, lang, zone), **values)
    elif clock.breached:
        text = gettext(lang, "%(target)s breached %(when)s: %(total)s of %(kind)s from %(start)s, %(used)s used",
                       when=when(clock.breached_at or clock.due, lang, zone), **values)
    else:
        text = gettext(lang, "%(target)s due %(when)s: %(total)s of %(kind)s from %(start)s, %(used)s used",
                       when=when(clock.due, lang, zone), **values)
    return text + _pauses(clock, lang)


def _pauses(clock: TargetClock, lang: str) -> str:
    parts = [gettext(lang, "%(span)s %(status)s", span=span(spent, lang), status=display_name(status, lang).lower())
             for status, spent in clock.paused_by]
    text = gettext(lang, "; paused %(parts)s", parts=format_list(parts, locale=locale_of(lang))) if parts else ""
    if clock.state is ClockState.PAUSED:
        text += gettext(lang, "; the clock is paused, so the due time assumes work resumes now")
    return text


def _about_target(ticket: TicketRow, clock: TargetClock, message: str, late: timedelta | None = None) -> Text:
    """`message` (which may name the target, number, span and department), then the clock explained."""
    def text(lang: str, zone: str) -> str:
        head = gettext(lang, message, target=target_name(clock.name, lang), number=ticket.number,
                       span=span(late or timedelta(0), lang), department=ticket.department or gettext(lang, "none"))
        return f"{head}\n{explain_in(clock, lang, zone)}"
    return text


def breached(ticket: TicketRow, clock: TargetClock) -> Text:
    return _about_target(ticket, clock, N_("The %(target)s target of ticket %(number)s is breached."))


def escalated(ticket: TicketRow, clock: TargetClock, late: timedelta) -> Text:
    return _about_target(ticket, clock, N_("Ticket %(number)s has been over its %(target)s target for %(span)s "
                                           "(department %(department)s)."), late)


def warning(ticket: TicketRow, clock: TargetClock) -> Text:
    return _about_target(ticket, clock, N_("The %(target)s target of ticket %(number)s is close."))


def stale(ticket: TicketRow, idle: timedelta) -> Text:
    def text(lang: str, zone: str) -> str:
        return gettext(lang, "Ticket %(number)s has had no activity for %(span)s (assignee %(assignee)s).",
                       number=ticket.number, span=span(idle, lang), assignee=ticket.assignee or gettext(lang, "none"))
    return text


def digest(day: str, unanswered: Sequence[TicketRow], overdue: Sequence[TicketRow],
           link: Callable[[TicketRow], str]) -> Text:
    """The support lead's daily list: each open ticket with status, department, agent and link."""
    def line(ticket: TicketRow, lang: str) -> str:
        status = display_name(ticket_status(ticket), lang)
        who = ticket.assignee or gettext(lang, "unassigned")
        return f"  {ticket.number} {ticket.subject[:60]} ({status}, {ticket.department or '-'}, {who})\n    {link(ticket)}"

    def text(lang: str, zone: str) -> str:
        parts = [gettext(lang, "Daily digest %(day)s", day=day), ""]
        for heading, rows in ((N_("Unanswered tickets (%(count)s):"), unanswered),
                              (N_("Overdue tickets (%(count)s):"), overdue)):
            parts.append(gettext(lang, heading, count=len(rows)))
            parts.extend(line(t, lang) for t in rows)
            parts.append(f"  {gettext(lang, 'none')}" if not rows else "")
            parts.append("")
        return "\n".join(parts).rstrip() + "\n"
    return text


def ticket_status(ticket: TicketRow) -> Status:
    return Status(ticket.status)


def lines(*parts: str | Text) -> Text:
    """Paragraphs of a notice, each either fixed text or written in the recipient's words."""
    def text(lang: str, zone: str) -> str:
        return "\n\n".join(part(lang, zone) if callable(part) else part for part in parts)
    return text


# -- the history a staff notice quotes -------------------------------------------------------

# The latest messages with words, newest first, each with its files (one row per file, or one
# with no file): one statement, where a second with the message ids spelled out cost as much
# as the first again (an expanding IN is compiled anew on every execution).
_LATEST = (select(MESSAGE.c.id, MESSAGE.c.created_at, MESSAGE.c.direction, MESSAGE.c.kind, MESSAGE.c.author,
                  MESSAGE.c.text, MESSAGE.c.visibility)
           .where(MESSAGE.c.ticket_id == bindparam("tid"), MESSAGE.c.text != "", MESSAGE.c.visibility != "mail")
           .order_by(MESSAGE.c.id.desc()).limit(bindparam("n")).subquery("latest"))
_HISTORY = (select(*_LATEST.c, MESSAGE_ATTACHMENT.c.id.label("file_id"), MESSAGE_ATTACHMENT.c.filename,
                   ATTACHMENT.c.size)
            .select_from(_LATEST.outerjoin(MESSAGE_ATTACHMENT, MESSAGE_ATTACHMENT.c.message_id == _LATEST.c.id)
                         .outerjoin(ATTACHMENT, ATTACHMENT.c.id == MESSAGE_ATTACHMENT.c.attachment_id))
            .order_by(_LATEST.c.id.desc(), MESSAGE_ATTACHMENT.c.id))
_HISTORY_CHARS = 600
# Where a notify step's reads hang on its connection (`Connection.info` outlives the checkout,
# so `reading_once` always takes them off again: nothing read crosses into the next step).
_READS = "postdesk.notify_reads"

# A row of `_HISTORY`: a message's seven columns and one of its files' three (None without one).
AnyRow = Row[*tuple[Any, ...]]
Stored = list[AnyRow]


@dataclass
class _Reads:
    """What one notify step read: each ticket's latest messages and their files, and each
    reader's (ticket, language, zone) rendering of them."""

    stored: dict[int, Stored] = field(default_factory=dict)
    shown: dict[tuple[int, str, str], list[dict[str, Any]]] = field(default_factory=dict)


@contextmanager
def reading_once(conn: Connection) -> Iterator[None]:
    """Within this block, `history` reads each ticket's messages once, however many notices quote them.

    Safe for one step: the only message rows a notify step writes are copies of the mail it
    sends (visibility "mail"), which the history leaves out, so what was read stays true."""
    if _READS in conn.info:  # an enclosing step already reads once
        yield
        return
    conn.info[_READS] = _Reads()
    try:
        yield
    finally:
        conn.info.pop(_READS, None)


class _Opening(NamedTuple):
    """A row of `_HISTORY` for a ticket's first message, made from what was stored."""

    id: int
    created_at: datetime
    direction: str
    kind: str
    author: str
    text: str
    visibility: str
    file_id: int | None
    filename: str | None
    size: int | None


def opened_with(conn: Connection, ticket_id: int, message_id: int, values: dict[str, Any]) -> None:
    """A new ticket's history is the one message it was opened with (stored without files):
    kept for this batch's notices, as the store keeps its values, so they need not read it back."""
    row = {name: as_stored(MESSAGE.c[name], values.get(name, default), conn.dialect) for name, default in
           (("direction", "in"), ("kind", "customer"), ("author", ""), ("text", ""), ("visibility", "public"))}
    shown = row["text"] != "" and row["visibility"] != "mail"
    store.keep_history(conn, ticket_id, [_Opening(message_id, values["created_at"], **row, file_id=None,
                                                  filename=None, size=None)] if shown else [])


def _stored(conn: Connection, ticket_id: int, count: int) -> Stored:
    """The ticket's latest `count` messages with words, newest first, a row per file of each.

    No `store.flush_behind` first: what a batch holds back is outbox rows and copies of sent
    mail (visibility "mail"), none of which this reads. A ticket this batch opened has its
    history kept (`opened_with`) until another message is added to it."""
    if not count:
        return []
    kept = store.kept_history(conn, ticket_id)
    if kept is not None:
        return list(kept)
    return list(conn.execute(_HISTORY, {"tid": ticket_id, "n": count}))


def _shown(stored: Stored, base_url: str, number: int, lang: str, zone: str) -> list[dict[str, Any]]:
    """The messages as a notice quotes them: each trimmed, with its files and their staff links."""
    files: dict[int, list[dict[str, str]]] = {}
    messages: dict[int, AnyRow] = {}
    for row in stored:
        messages.setdefault(row.id, row)
        if row.file_id is not None:
            files.setdefault(row.id, []).append({
                "name": row.filename or "(no name)", "size": formats.size(row.size, lang),
                "link": f"{base_url.rstrip('/')}/tickets/{number}/attachments/{row.file_id}"})
    found = []
    for row in messages.values():
        text = row.text.strip()
        if len(text) > _HISTORY_CHARS:
            text = text[:_HISTORY_CHARS].rstrip() + " […]"
        found.append({"when": formats.when(row.created_at, lang, zone), "who": row.author or "postdesk",
                      "kind": gettext(lang, kinds.label(row)).lower(), "text": text, "files": files.get(row.id, [])})
    return found


def history(conn: Connection, ticket: TicketRow, count: int, base_url: str, lang: str,
            zone: str) -> list[dict[str, Any]]:
    """The ticket's latest messages, newest first, each trimmed, with their files: what an agent reads first.

    Inside `reading_once`, read once per ticket and rendered once per language and zone."""
    reads: _Reads | None = conn.info.get(_READS)
    if reads is None:
        return _shown(_stored(conn, ticket.id, count), base_url, ticket.number, lang, zone)
    key = (ticket.id, lang, zone)
    if key not in reads.shown:
        if ticket.id not in reads.stored:
            reads.stored[ticket.id] = _stored(conn, ticket.id, count)
        reads.shown[key] = _shown(reads.stored[ticket.id], base_url, ticket.number, lang, zone)
    return reads.shown[key]
