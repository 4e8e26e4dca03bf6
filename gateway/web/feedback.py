"""The feedback page: one click on a 1-5 link in the resolution mail records the rating.

This module owns `/feedback/<token>`. The token (see `gateway.web.tokens.feedback_links`)
carries the ticket number and the score, so the click itself is the answer and no sign-in is
asked for: the link was mailed to the customer, and it can only rate that one ticket. The
rating is credited to the ticket's assignee at the moment of the click.

A ticket is rated once: `rating.ticket_id` is unique, the first click wins, and later clicks
(another score from the same mail, a forwarded mail, a mail scanner) show the rating already
given. The page then offers a comment field; the comment is stored once as well, by a POST
with the CSRF token of the browser's session.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.db.models import utcnow
from gateway.tickets.lifecycle import DONE
from gateway.web import store
from gateway.web.context import Visit, Web
from gateway.web.tokens import FeedbackClaim

log = logging.getLogger("gateway.web")
COMMENT_MAX = 4000
_INSERT = {"postgresql": pg_insert, "sqlite": sqlite_insert}


@dataclass(frozen=True)
class Outcome:
    ticket: Row[Any] | None
    rating: Row[Any] | None
    # True when this very request recorded the rating (or the comment).
    recorded: bool


def _insert_rating(conn: Connection, ticket: Row[Any], score: int) -> bool:
    values = {"ticket_id": ticket.id, "agent": ticket.assignee or "", "score": score, "comment": "",
              "created_at": utcnow()}
    statement = _INSERT[conn.dialect.name](store.RATING).values(values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT through SQLAlchemy.
    return conn.execute(statement.returning(store.RATING.c.id)).first() is not None


def record(web: Web, claim: FeedbackClaim) -> Outcome:
    """Store the rating of a resolved or closed ticket unless it was rated before."""
    with web.writer.begin() as conn:
        ticket = store.ticket_by_number(conn, claim.number)
        if ticket is None or ticket.status not in DONE:
            return Outcome(ticket, None, False)
        recorded = _insert_rating(conn, ticket, claim.score)
        return Outcome(ticket, store.rating(conn, ticket.id), recorded)


def add_comment(web: Web, claim: FeedbackClaim, comment: str) -> Outcome:
    with web.writer.begin() as conn:
        ticket = store.ticket_by_number(conn, claim.number)
        if ticket is None:
            return Outcome(None, None, False)
        done = conn.execute(
            update(store.RATING)
            .where(store.RATING.c.ticket_id == ticket.id, store.RATING.c.comment == "")
            .values(comment=comment)
        ).rowcount == 1
        return Outcome(ticket, store.rating(conn, ticket.id), done)


def _reread(web: Web, claim: FeedbackClaim, _text: str) -> Outcome:
    """An empty comment changes nothing: show the page as it stands."""
    with web.reader.connect() as conn:
        ticket = store.ticket_by_number(conn, claim.number)
        return Outcome(ticket, store.rating(conn, ticket.id) if ticket is not None else None, False)


async def feedback(request: Request) -> Response:
    visit = Visit.of(request)
    claim = visit.web.tokens.read_feedback(request.path_params["token"])
    outcome = await run_in_threadpool(record, visit.web, claim) if claim is not None else None
    if claim is None or outcome is None or outcome.ticket is None:
        return visit.bad_link()
    if outcome.recorded:
        log.info("ticket %s rated %d", claim.number, claim.score)
    return visit.page("feedback", outcome=outcome, number=claim.number, commented=False)


async def comment(request: Request) -> Response:
    visit = Visit.of(request)
    form = await visit.form()
    if form is None:
        return visit.forbidden()
    claim = visit.web.tokens.read_feedback(request.path_params["token"])
    if claim is None:
        return visit.bad_link()
    text = form.get("comment")
    text = text.strip()[:COMMENT_MAX] if isinstance(text, str) else ""
    outcome = await run_in_threadpool(add_comment if text else _reread, visit.web, claim, text)
    if outcome.ticket is None:
        return visit.bad_link()
    return visit.page("feedback", outcome=outcome, number=claim.number, commented=outcome.recorded)
