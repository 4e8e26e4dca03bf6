"""The feedback page: a 1-5 link in the resolution mail opens it, one button records the rating.

This module owns `/feedback/<token>`. The token (see `gateway.links.web.feedback_links`)
carries the ticket number and the score the customer clicked; no sign-in is asked for: the link
was mailed to the customer, and it can only rate that one ticket.

A GET records nothing: mail scanners and link previews fetch every link in a mail, and would
otherwise rate every ticket 1 (the first link). It shows the page with the clicked score
chosen, the comment field and one button; the POST (with the CSRF token of the browser's
session, as every form of the web app) records the rating, credited to the ticket's assignee
at that moment, and the comment with it.

A ticket is rated once: `rating.ticket_id` is unique and the first POST wins; later visits show
the rating given and, while it has none, still take a comment, stored once as well.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection, update
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.clock import utcnow
from gateway.db.ignore import dialect_insert
from gateway.db.rows import TicketRow
from gateway.db.tables import RATING, AnyRow
from gateway.links.web import FeedbackClaim
from gateway.tickets.lifecycle import DONE
from gateway.web import store
from gateway.web.context import Visit, Web

log = logging.getLogger("gateway.web")
COMMENT_MAX = 4000


@dataclass(frozen=True)
class Outcome:
    ticket: TicketRow | None
    rating: AnyRow | None
    # True when this very request recorded the rating (or the comment).
    recorded: bool


def _insert_rating(conn: Connection, ticket: TicketRow, score: int) -> bool:
    values = {"ticket_id": ticket.id, "agent": ticket.assignee or "", "score": score, "comment": "",
              "created_at": utcnow()}
    maker = dialect_insert(conn.dialect.name)
    statement = maker(RATING).values(values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT through SQLAlchemy.
    return conn.execute(statement.returning(RATING.c.id)).first() is not None


def record(web: Web, claim: FeedbackClaim, score: int, comment: str) -> tuple[Outcome, bool]:
    """Store the rating (and comment) of a resolved or closed ticket unless it was rated before;
    a ticket rated already takes the comment if it has none. Returns also whether it commented."""
    with web.writer.begin() as conn:
        ticket = store.ticket_by_number(conn, claim.number)
        if ticket is None or ticket.status not in DONE:
            return Outcome(ticket, None, False), False
        recorded = _insert_rating(conn, ticket, score)
        commented = bool(comment) and conn.execute(
            update(RATING)
            .where(RATING.c.ticket_id == ticket.id, RATING.c.comment == "")
            .values(comment=comment)
        ).rowcount == 1
        return Outcome(ticket, store.rating(conn, ticket.id), recorded), commented


def _look(web: Web, claim: FeedbackClaim) -> Outcome:
    """The page as it stands, changing nothing (what a GET shows)."""
    with web.reader.connect() as conn:
        ticket = store.ticket_by_number(conn, claim.number)
        return Outcome(ticket, store.rating(conn, ticket.id) if ticket is not None else None, False)


def _score(value: object, default: int) -> int:
    """The score chosen on the page; the link's own when the form names none or nonsense."""
    return int(value) if isinstance(value, str) and value in ("1", "2", "3", "4", "5") else default


async def feedback(request: Request) -> Response:
    """GET: the page with the clicked score chosen; nothing is recorded."""
    visit = Visit.of(request)
    claim = visit.web.tokens.read_feedback(request.path_params["token"])
    outcome = await run_in_threadpool(_look, visit.web, claim) if claim is not None else None
    if claim is None or outcome is None or outcome.ticket is None:
        return visit.bad_link()
    return visit.page("feedback", outcome=outcome, number=claim.number, chosen=claim.score,
                      rateable=outcome.ticket.status in DONE, commented=False)


async def rate(request: Request) -> Response:
    """POST: the rating chosen on the page and the comment, with this browser's CSRF token."""
    visit = Visit.of(request)
    form = await visit.form()
    if form is None:
        return visit.forbidden()
    claim = visit.web.tokens.read_feedback(request.path_params["token"])
    if claim is None:
        return visit.bad_link()
    text = form.get("comment")
    text = text.strip()[:COMMENT_MAX] if isinstance(text, str) else ""
    score = _score(form.get("score"), claim.score)
    outcome, commented = await run_in_threadpool(record, visit.web, claim, score, text)
    if outcome.ticket is None:
        return visit.bad_link()
    if outcome.recorded:
        log.info("ticket %s rated %d", claim.number, score)
    return visit.page("feedback", outcome=outcome, number=claim.number, chosen=score,
                      rateable=outcome.ticket.status in DONE, commented=commented)
