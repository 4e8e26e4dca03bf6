"""The web history as an ASGI application: routes, security headers, and the factory.

This module owns `create_app`, which wires the pieces of `gateway.web` into one Starlette app,
and the headers every answer carries. The pages need no JavaScript, so the Content Security
Policy allows none at all: should escaping ever fail somewhere, a script in a subject still
cannot run. `Referrer-Policy: same-origin` keeps the tokens in link paths from travelling to
sites that a message links to (`no-referrer` would also make browsers send `Origin: null` with
our own forms, which the CSRF check refuses), and `Cache-Control: no-store` keeps one person's ticket pages
out of shared caches and the browser's back-button store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import Config
from gateway.links.tags import TagFormat
from gateway.links.web import Tokens
from gateway.notify import Notifier
from gateway.routing.directory import DEFAULT_DIRECTORY, Directory, load_directory
from gateway.templating import MailTemplates
from gateway.web import auth, feedback, outbox, unsubscribe, views
from gateway.web.context import Web
from gateway.web.ratelimit import PER_ADDRESS, PER_CLIENT, Limit, RateLimiter
from gateway.web.render import Pages
from gateway.web.session import Sessions
from gateway.web.store import read_engine

_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds `_HEADERS` to every HTTP answer that does not set its own value."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def routes(templates_dir: Path) -> list[Route | Mount]:
    return [
        Route("/", views.home),
        Route("/signin", auth.signin_form, methods=["GET"]),
        Route("/signin", auth.request_link, methods=["POST"]),
        Route("/signin/{token}", auth.confirm_form, methods=["GET"]),
        Route("/signin/{token}", auth.confirm, methods=["POST"]),
        Route("/signout", auth.sign_out, methods=["POST"]),
        Route("/t/{token}", auth.ticket_link, methods=["GET"]),
        Route("/t/{token}", auth.ticket_link_confirm, methods=["POST"]),
        Route("/tickets", views.ticket_list, methods=["GET"]),
        Route("/tickets/{number}", views.ticket_page, methods=["GET"]),
        Route("/tickets/{number}/attachments/{attachment}", views.attachment, methods=["GET"]),
        Route("/outbox", outbox.outbox_page, methods=["GET"]),
        Route("/feedback/{token}", feedback.feedback, methods=["GET"]),
        Route("/feedback/{token}", feedback.rate, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe.confirm_form, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe.unsubscribe, methods=["POST"]),
        Mount("/static", StaticFiles(directory=templates_dir / "web" / "static", check_dir=False), name="static"),
    ]


def default_directory() -> Directory:
    """The routing directory when its file exists, else an empty one (customers only)."""
    return load_directory(DEFAULT_DIRECTORY) if DEFAULT_DIRECTORY.exists() else Directory()


def create_app(
    config: Config,
    writer: Engine,
    *,
    reader: Engine | None = None,
    directory: Directory | None = None,
    limits: tuple[Limit, Limit] = (PER_ADDRESS, PER_CLIENT),
    on_outbox: Callable[[], None] = lambda: None,
) -> Starlette:
    """The web history over `writer` (the daemon's engine); `limits` is (per address, per client)."""
    templates_dir = Path(config.templates_dir)
    tokens = Tokens(config.secret_key())
    web = Web(
        config=config,
        writer=writer,
        reader=reader or read_engine(config.database.url, writer),
        directory=directory if directory is not None else default_directory(),
        tokens=tokens,
        sessions=Sessions(tokens, secure=config.web.base_url.lower().startswith("https:")),
        pages=Pages(templates_dir),
        notifier=Notifier(config, MailTemplates(templates_dir), TagFormat(config.tickets.tag_format)),
        per_address=RateLimiter(limits[0], engine=writer, scope="address"),
        per_client=RateLimiter(limits[1], engine=writer, scope="client"),
        on_outbox=on_outbox,
    )
    app = Starlette(routes=routes(templates_dir), middleware=[Middleware(SecurityHeaders)])
    app.state.web = web
    return app
