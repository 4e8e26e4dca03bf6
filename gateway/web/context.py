"""What every endpoint of the web history shares: the `Web` object and the page helpers.

This module owns `Web`, built once by `gateway.web.app.create_app` and kept on `app.state`:
the config, the two engines (the daemon's writer, and the reader pages use), the directory,
tokens, sessions, templates, rate limiters and the callback that wakes the outbox sender. It
also owns `Visit`, the steps every endpoint takes on one request: load the session, find out
who is asking and in which language, check a posted form's CSRF token, render, and store the
cookie with the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.config import Config
from gateway.links.web import Tokens
from gateway.notify import Notifier
from gateway.routing.directory import Directory
from gateway.web import store
from gateway.web.access import Viewer, build_viewer
from gateway.web.language import negotiate
from gateway.web.ratelimit import RateLimiter
from gateway.web.render import Pages
from gateway.web.session import CSRF_FIELD, Session, Sessions, csrf_ok


@dataclass
class Web:
    config: Config
    writer: Engine
    reader: Engine
    directory: Directory
    tokens: Tokens
    sessions: Sessions
    pages: Pages
    notifier: Notifier
    per_address: RateLimiter
    per_client: RateLimiter
    # Wakes the outbox sender after a sign-in mail was queued; called on the event loop.
    on_outbox: Callable[[], None]

    def close(self) -> None:
        """Dispose of the reader engine when it is one of our own (SQLite), not the daemon's."""
        if self.reader is not self.writer:
            self.reader.dispose()

    def language(self, request: Request, viewer: Viewer | None = None) -> str:
        customer_lang = viewer.language if viewer is not None else None
        return negotiate(request.headers.get("accept-language"), customer_lang, self.config.tickets.language)

    async def viewer(self, session: Session) -> Viewer | None:
        """Who the session belongs to and what they may see; None when nobody is signed in."""
        email = session.email
        if email is None:
            return None

        def load() -> Viewer:
            with self.reader.connect() as conn:
                row = store.customer(conn, email)
            return build_viewer(email, row, self.config, self.directory, session.scope)

        return await run_in_threadpool(load)


@dataclass
class Visit:
    """One request: the shared `Web`, the request itself and the browser's session."""

    web: Web
    request: Request
    session: Session

    @classmethod
    def of(cls, request: Request) -> Visit:
        web: Web = request.app.state.web
        return cls(web, request, web.sessions.load(request))

    async def viewer(self) -> Viewer | None:
        return await self.web.viewer(self.session)

    async def form(self) -> FormData | None:
        """The posted form, or None when its CSRF token does not match this browser's session."""
        form = await self.request.form()
        if not csrf_ok(self.request, self.session, form.get(CSRF_FIELD), self.web.config.web.base_url):
            return None
        return form

    def page(self, name: str, *, viewer: Viewer | None = None, status_code: int = 200, **context: Any) -> Response:
        lang = self.web.language(self.request, viewer)
        tz = viewer.timezone if viewer is not None else self.web.config.tickets.timezone
        response = self.web.pages.render(
            name, lang=lang, tz=tz, status_code=status_code, viewer=viewer, csrf=self.session.csrf,
            csrf_field=CSRF_FIELD, **context,
        )
        self.web.sessions.store(response, self.session)
        return response

    def redirect(self, url: str) -> Response:
        response = RedirectResponse(url, status_code=303)
        self.web.sessions.store(response, self.session)
        return response

    def not_found(self, viewer: Viewer | None = None) -> Response:
        """The one answer for "no such ticket" and "not yours": the two must not be told apart."""
        return self.page("error", viewer=viewer, status_code=404, kind="not_found")

    def bad_link(self) -> Response:
        """Invalid, expired, tampered with or used: one page for all, with a way to get a new link."""
        return self.page("error", status_code=400, kind="bad_link")

    def forbidden(self) -> Response:
        return self.page("error", status_code=403, kind="csrf")


def to_signin(request: Request) -> Response:
    """Send a browser that is not signed in to the sign-in page, remembering where it was going."""
    path = request.url.path
    return RedirectResponse(f"/signin?next={path}", status_code=303)
