"""Sign-in without passwords: links by mail, links in notifications, and signing out.

This module owns the sign-in endpoints and their rules:

- `POST /signin` asks for a link. The answer is the same page, in the same time, whether or not
  the address is known (so the page cannot be used to find out who is a customer); a link is
  mailed, after the answer, only to a known address. Requests are rate limited per client and
  per address, in the database (a restart forgets nothing), and the mail passes the outbox's
  budgets for automatic mail (`gateway.guard`).
- `GET /signin/<token>` checks the link and shows a button; `POST` there uses it. Mail filters
  that open links to scan them (Safe Links and the like) only GET, so they cannot spend a
  single-use link, and a GET never signs anybody in.
- A link is used once: its id goes into the `Once` table, whose primary key makes the second
  use fail even when two daemons see it at the same moment.
- `GET /t/<token>` is the link in a notification: it opens that ticket, and only that ticket,
  for the address it was sent to, as often as needed until it expires. When somebody else is
  signed in in that browser it asks first (`POST /t/<token>` is the yes).
- `POST /signout` clears the session cookie.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.clock import utcnow
from gateway.db.tables import ONCE
from gateway.guard import allow_automatic
from gateway.links.web import SIGNIN_TTL, SigninClaim, signin_link
from gateway.mail.compose import Outgoing
from gateway.web import store
from gateway.web.access import is_known
from gateway.web.context import Visit, Web
from gateway.web.language import negotiate

log = logging.getLogger("gateway.web")
_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
# Where a sign-in may lead afterwards: our own ticket pages, never another site.
_NEXT = re.compile(r"^/tickets(/\d{1,12})?$")


def safe_next(value: object) -> str:
    return value if isinstance(value, str) and _NEXT.match(value) else "/tickets"


def _once_key(claim: SigninClaim) -> str:
    return f"signin:{claim.jti}"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def signin_form(request: Request) -> Response:
    visit = Visit.of(request)
    return visit.page("signin", next=safe_next(request.query_params.get("next")),
                      signed_out="out" in request.query_params, error="")


async def request_link(request: Request) -> Response:
    visit = Visit.of(request)
    web = visit.web
    form = await visit.form()
    if form is None:
        return visit.forbidden()
    next_path = safe_next(form.get("next"))
    raw = form.get("email")
    email = raw.strip().lower() if isinstance(raw, str) else ""
    if len(email) > 320 or not _ADDRESS.match(email):
        return visit.page("signin", status_code=400, next=next_path, signed_out=False, error="bad_address",
                          email=raw if isinstance(raw, str) else "")
    if not await run_in_threadpool(_allowed, web, _client(request), email):
        log.info("sign-in link refused: rate limit (client %s)", _client(request))
        return visit.page("error", status_code=429, kind="rate_limited")
    accept = request.headers.get("accept-language")
    # The same page either way, whether an address is known is nobody's business here; and
    # the mail is queued after the answer went out, so that the time to answer tells nothing.
    response = visit.page("signin_sent", email=email)
    response.background = BackgroundTask(_send_link_later, web, email, next_path, accept)
    return response


def _allowed(web: Web, client: str, email: str) -> bool:
    """Count the request against both limits (rows in the database: they outlive a restart).

    The client is counted first, so that one client cannot use up a victim's per-address allowance.
    """
    return web.per_client.allow(client) and web.per_address.allow(email)


async def _send_link_later(web: Web, email: str, next_path: str, accept_language: str | None) -> None:
    try:
        sent = await run_in_threadpool(_send_link, web, email, next_path, accept_language)
    except Exception:
        log.exception("sign-in link: could not queue the mail")
        return
    if sent:
        web.on_outbox()


def _send_link(web: Web, email: str, next_path: str, accept_language: str | None) -> bool:
    with web.reader.connect() as conn:
        customer = store.customer(conn, email)
    if not is_known(email, customer is not None, web.config, web.directory):
        return False
    lang = negotiate(accept_language, customer.language if customer is not None else None,
                     web.config.tickets.language)
    link = signin_link(web.config, web.tokens.signin(email, next_path))
    rendered = web.notifier.templates.render(
        "signin", lang, link=link, minutes=int(SIGNIN_TTL.total_seconds() // 60),
        base_url=web.config.web.base_url, sender_name=web.config.outbox.from_name,
    )
    mail = Outgoing(
        from_addr=web.config.mailboxes[0], from_name=web.config.outbox.from_name, to=email,
        subject=rendered.subject, text=rendered.text, domain=web.config.message_id_domain,
    )
    with web.writer.begin() as conn:
        # Sign-in mail is automatic mail too: the recipient's budget and the suppression list hold.
        verdict = allow_automatic(conn, web.config, to=email, ticket_id=None)
        if not verdict.allowed:
            log.info("sign-in link not sent: %s", verdict.reason)
            return False
        web.notifier.enqueue(conn, mail, ticket_id=None, kind="signin")
    return True


def _claim(web: Web, token: str) -> SigninClaim | None:
    """The claim of a good, unexpired, unused sign-in token."""
    claim = web.tokens.read_signin(token)
    if claim is None:
        return None
    with web.reader.connect() as conn:
        used = conn.execute(select(ONCE.c.key).where(ONCE.c.key == _once_key(claim))).first()
    return None if used else claim


def _spend(web: Web, claim: SigninClaim) -> bool:
    """Record the link as used; False when it already was (here or on another daemon)."""
    try:
        with web.writer.begin() as conn:
            conn.execute(insert(ONCE), {"key": _once_key(claim), "created_at": utcnow()})
    except IntegrityError:
        return False
    return True


async def confirm_form(request: Request) -> Response:
    visit = Visit.of(request)
    claim = await run_in_threadpool(_claim, visit.web, request.path_params["token"])
    if claim is None:
        return visit.bad_link()
    return visit.page("signin_confirm", email=claim.email)


async def confirm(request: Request) -> Response:
    visit = Visit.of(request)
    if await visit.form() is None:
        return visit.forbidden()
    claim = visit.web.tokens.read_signin(request.path_params["token"])
    if claim is None or not await run_in_threadpool(_spend, visit.web, claim):
        return visit.bad_link()
    visit.session.sign_in(claim.email)
    log.info("signed in by mailed link")
    return visit.redirect(safe_next(claim.next))


async def ticket_link(request: Request) -> Response:
    visit = Visit.of(request)
    claim = visit.web.tokens.read_ticket(request.path_params["token"])
    if claim is None:
        return visit.bad_link()
    session = visit.session
    if session.email is not None and session.email != claim.email:
        # Someone else is signed in in this browser: a link (forwarded, or planted by a page)
        # must not swap their session for another person's without being asked.
        return visit.page("signin_confirm", email=claim.email, current=session.email)
    if not (session.email == claim.email and session.scope is None):
        session.sign_in(claim.email, scope=claim.number)
    # Redirect to the plain address, so the token does not stay in the address bar and history.
    return visit.redirect(f"/tickets/{claim.number}")


async def ticket_link_confirm(request: Request) -> Response:
    """The answer to the question `ticket_link` asked: yes, open the ticket as its addressee."""
    visit = Visit.of(request)
    if await visit.form() is None:
        return visit.forbidden()
    claim = visit.web.tokens.read_ticket(request.path_params["token"])
    if claim is None:
        return visit.bad_link()
    visit.session.sign_in(claim.email, scope=claim.number)
    return visit.redirect(f"/tickets/{claim.number}")


async def sign_out(request: Request) -> Response:
    visit = Visit.of(request)
    if await visit.form() is None:
        return visit.forbidden()
    response = RedirectResponse("/signin?out=1", status_code=303)
    visit.web.sessions.clear(response)
    return response
