"""The ticket pages: the list, one ticket with its history, and attachment downloads.

This module owns what a signed-in person sees of tickets. Every ticket is looked up by its
number and then checked with `gateway.web.access.may_see`; a ticket that does not exist and a
ticket that is somebody else's get the same 404 page, so numbers cannot be probed. Attachments
are addressed by ticket number *and* attachment id, and the id must belong to a message of that
ticket that the viewer may see.

What a customer reads: public messages (plain text, or HTML cleaned by `sanitize_html`), their
attachments, the status history and the SLA times of the Romanian seed. What an agent reads in
addition: internal notes, the whole event log with who did what, and each message's trace.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.db.rows import TicketRow
from gateway.db.tables import AnyRow
from gateway.i18n.catalogues import gettext
from gateway.tickets import kinds
from gateway.tickets.calendar import BusinessCalendar
from gateway.tickets.clocks import plan_for
from gateway.tickets.lifecycle import Event, Kind, Status, status_history
from gateway.tickets.notices import explain_in, target_name
from gateway.tickets.sla import Clocks, SlaPlan, TargetClock, compute_clocks
from gateway.web import store
from gateway.web.access import Viewer, may_see, sees_internal
from gateway.web.context import Visit, Web, to_signin
from gateway.web.messages import REDACTED, MessageView, message_view

STATUS_CHOICES = (store.ALL, store.OPEN, *(status.value for status in Status))
# The totals customers are shown do not depend on targets; a plan without any measures none.
_DISPLAY_PLAN = SlaPlan(name="display", assign=None)
_ALWAYS = BusinessCalendar.always()
_MAX_PAGE = 100_000
# Types a browser might render or run even when told to download; they are sent as bytes.
_ACTIVE_TYPES = ("html", "xml", "svg", "javascript", "ecmascript", "xhtml")


def _int(value: str | None, default: int, upper: int) -> int:
    try:
        number = int(value or "")
    except ValueError:
        return default
    return number if 1 <= number <= upper else default


async def home(request: Request) -> Response:
    return RedirectResponse("/tickets", status_code=303)


async def ticket_list(request: Request) -> Response:
    visit = Visit.of(request)
    web = visit.web
    viewer = await visit.viewer()
    if viewer is None:
        return to_signin(request)
    status = request.query_params.get("status", store.ALL)
    status = status if status in STATUS_CHOICES else store.ALL
    page = _int(request.query_params.get("page"), 1, _MAX_PAGE)

    def load() -> store.ListPage:
        with web.reader.connect() as conn:
            return store.ticket_list(conn, viewer, status=status, page=page)

    listing = await run_in_threadpool(load)
    return visit.page("tickets", viewer=viewer, listing=listing, status=status, choices=STATUS_CHOICES,
                      department_title=_department_title(web))


def _department_title(web: Web) -> Callable[[str | None], str]:
    def title(name: str | None) -> str:
        if not name:
            return ""
        department = web.directory.departments.get(name)
        return (department.title or name) if department else name

    return title


class ShownTicket(TicketRow, Protocol):
    """A ticket as `web.store` selects it for its page: the whole row and whose it is."""

    customer_email: str
    customer_name: str


@dataclass
class TicketView:
    ticket: ShownTicket
    messages: list[MessageView]
    steps: list[tuple[datetime, str]]
    events: list[AnyRow]
    clocks: Clocks | None
    internal: bool
    rating: AnyRow | None
    # Staff see the SLA targets of the ticket's plan on its calendar, as `ticket show` does.
    targets: list[TargetClock] = field(default_factory=list)
    # The ticket this one follows, and those that follow it, as far as the viewer may see them.
    follows: AnyRow | None = None
    followers: list[AnyRow] = field(default_factory=list)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _log(ticket: TicketRow, rows: list[AnyRow]) -> list[Event]:
    """The event log as the SLA code reads it; tickets from before the log get a "created" entry."""
    found: list[Event] = []
    for row in rows:
        try:
            status = Status(row.status) if row.status else None
            found.append(Event(_aware(row.at), row.kind, status, row.actor, row.detail))
        except ValueError:
            continue
    if not any(event.kind == Kind.CREATED for event in found):
        found.insert(0, Event(_aware(ticket.created_at), Kind.CREATED, Status.NEW))
    return found


def _clocks(log: list[Event]) -> Clocks | None:
    try:
        return compute_clocks(log, _DISPLAY_PLAN, _ALWAYS, datetime.now(UTC))
    except ValueError:
        # A log the lifecycle would not write (a status before "created"): show no times
        # rather than wrong ones.
        return None


def _steps(log: list[Event]) -> list[tuple[datetime, str]]:
    try:
        return [(at, status.value) for at, status in status_history(log)]
    except ValueError:
        return []


def load_ticket(web: Web, viewer: Viewer, number: int, redacted: str = "") -> TicketView | None:
    with web.reader.connect() as conn:
        ticket = store.ticket_by_number(conn, number)
        if ticket is None or not may_see(viewer, ticket):
            return None
        internal = sees_internal(viewer, ticket)
        rows = store.messages(conn, ticket.id, internal=internal)
        files = store.attachments(conn, [row.id for row in rows])
        event_rows = store.events(conn, ticket.id)
        rating = store.rating(conn, ticket.id) if internal else None
        follows = store.ticket_by_id(conn, ticket.linked_ticket_id) if ticket.linked_ticket_id else None
        followers = [t for t in store.linked_from(conn, ticket.id) if may_see(viewer, t)]
    views = [message_view(row, files.get(row.id, []), number=ticket.number, base_url=web.config.web.base_url,
                          internal=internal, redacted=redacted) for row in rows]
    log = _log(ticket, event_rows)
    targets = _targets(web, ticket, log) if internal else []
    if follows is not None and not may_see(viewer, follows):
        follows = None
    return TicketView(ticket, views, _steps(log), event_rows if internal else [], _clocks(log), internal, rating,
                      targets, follows, followers)


def _targets(web: Web, ticket: TicketRow, log: list[Event]) -> list[TargetClock]:
    plan, calendar = plan_for(web.config, ticket.sla_plan)
    try:
        return list(compute_clocks(log, plan, calendar, datetime.now(UTC)).targets)
    except ValueError:
        return []


async def ticket_page(request: Request) -> Response:
    visit = Visit.of(request)
    viewer = await visit.viewer()
    if viewer is None:
        return to_signin(request)
    number = _ticket_number(request)
    lang = visit.web.language(request, viewer)
    redacted = gettext(lang, REDACTED)
    view = await run_in_threadpool(load_ticket, visit.web, viewer, number, redacted) if number else None
    if view is None:
        return visit.not_found(viewer)
    return visit.page("ticket", viewer=viewer, view=view, department_title=_department_title(visit.web),
                      author=_author_label(visit.web, view.internal),
                      explain=lambda clock: explain_in(clock, lang, viewer.timezone),
                      target_name=lambda name: target_name(name, lang), event_label=kinds.event_label)


def _ticket_number(request: Request) -> int:
    """The number in the path, or 0 (never a ticket) when it is not a plausible number."""
    return _int(request.path_params["number"], 0, 10**12)


def _author_label(web: Web, internal: bool) -> Callable[[AnyRow, ShownTicket], str]:
    def label(message: AnyRow, ticket: ShownTicket) -> str:
        if message.direction == "in" and message.author == ticket.customer_email:
            return str(ticket.customer_name or ticket.customer_email)
        if message.direction == "in" and message.kind == "customer":
            return str(message.author)
        if not internal:
            # Customers see "support", not which agent's address answered.
            return ""
        agent = web.config.agent(message.author or "")
        return agent.name if agent is not None else str(message.author)

    return label


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 5987 form."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip() or "attachment"
    fallback = "".join(ch if ch.isascii() and ch not in '"\\;' else "_" for ch in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def download_type(content_type: str) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    valid = kind.count("/") == 1 and all(part and part.isascii() and " " not in part for part in kind.split("/"))
    if not valid or any(word in kind for word in _ACTIVE_TYPES):
        return "application/octet-stream"
    return kind


async def attachment(request: Request) -> Response:
    visit = Visit.of(request)
    viewer = await visit.viewer()
    if viewer is None:
        return to_signin(request)
    number = _ticket_number(request)
    link_id = _int(request.path_params["attachment"], 0, 2**62)

    def load() -> AnyRow | None:
        with visit.web.reader.connect() as conn:
            ticket = store.ticket_by_number(conn, number)
            if ticket is None or not may_see(viewer, ticket):
                return None
            found = store.attachment(conn, ticket.id, link_id)
            if found is None or (found.visibility != "public" and not sees_internal(viewer, ticket)):
                return None
            return found

    found = await run_in_threadpool(load) if number and link_id else None
    if found is None:
        return visit.not_found(viewer)
    headers = {
        "Content-Disposition": content_disposition(found.filename),
        "X-Content-Type-Options": "nosniff",
        # Should a browser render it after all, it runs in an origin of its own with no scripts.
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    return Response(bytes(found.data), media_type=download_type(found.content_type), headers=headers)
