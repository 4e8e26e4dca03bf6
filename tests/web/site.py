"""Real parts for the web tests: the web app served by uvicorn on a free port, a small HTTP
client that keeps cookies and never follows redirects, and rows written straight into the store.

The app runs in a thread with its own event loop, through the same `WebServer` the daemon uses,
against a `tests.harness.Database`. Sign-in goes the real way: the form, the mail in the outbox,
the link, the button.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import http.client
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Engine, insert, select, text

from gateway.config import Agent, Config, DatabaseConfig, WebConfig
from gateway.db.engine import make_engine, upgrade
from gateway.db.models import (
    Attachment,
    Customer,
    Message,
    MessageAttachment,
    Outbox,
    Ticket,
    TicketEvent,
)
from gateway.routing.directory import Department, Directory, Organisation
from gateway.web.app import create_app
from gateway.web.ratelimit import Limit
from gateway.web.server import WebServer
from tests.harness import REPO, Database, free_port, wait_until

SECRET = "web-test-secret"
ROOMY = (Limit(1000, 600), Limit(1000, 600))


def web_config(db_url: str, port: int, *, agents: tuple[Agent, ...] = (), base_url: str | None = None,
               store_dir: Any = None) -> Config:
    return Config(
        secret=SECRET,
        database=DatabaseConfig(url=db_url),
        web=WebConfig(listen=f"127.0.0.1:{port}", base_url=base_url or f"http://127.0.0.1:{port}"),
        templates_dir=REPO / "templates",
        agents=agents,
        **({"store_dir": store_dir} if store_dir is not None else {}),
    )


class WebSite:
    """The web app of `config` served on its `web.listen` from a thread of its own."""

    def __init__(self, config: Config, directory: Directory, *, limits: tuple[Limit, Limit] = ROOMY) -> None:
        self.config = config
        self.writer: Engine = make_engine(config.database.url)
        upgrade(self.writer)
        self.app = create_app(config, self.writer, directory=directory, limits=limits)
        self.port = int(config.web.listen.rsplit(":", 1)[1])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="web-site", daemon=True)
        self.thread.start()
        self.server = WebServer(self.app, "127.0.0.1", self.port, on_stop=self.app.state.web.close)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(15)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.writer.dispose()

    def client(self, **headers: str) -> Client:
        return Client(self.port, dict(headers))


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def cookies(self) -> list[str]:
        return self.headers.get_all("set-cookie") or []


@dataclass
class Client:
    """A browser stand-in: keeps cookies, sends forms, never follows redirects on its own."""

    port: int
    headers: dict[str, str] = field(default_factory=dict)
    jar: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {**self.headers, **(headers or {})}
        if self.jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            response = Response(answer.status, answer.headers, answer.read())
        finally:
            conn.close()
        for cookie in response.cookies():
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if value in ("", '""') or "max-age=0" in cookie.lower():
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return response

    def get(self, path: str, **headers: str) -> Response:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict[str, str], **headers: str) -> Response:
        body = urlencode(form).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded", **headers})

    def csrf(self, path: str) -> str:
        """The CSRF token of the form on `path` (fetching it also sets the session cookie)."""
        page = self.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, f"no CSRF field on {path}: {page.status} {page.text[:300]}"
        return found.group(1)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def mails_to(engine: Engine, address: str, kind: str = "signin") -> list[EmailMessage]:
    table: Any = Outbox.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.raw).where(table.c.rcpt_to == address, table.c.kind == kind).order_by(table.c.id)
        ).all()
    return [email.message_from_bytes(row.raw, policy=email.policy.default) for row in rows]  # type: ignore[misc]


def wait_for_mail(engine: Engine, address: str, count: int, kind: str = "signin") -> list[EmailMessage]:
    """The sign-in mail is queued just after the page answered: wait for it to be in the outbox."""
    return wait_until(lambda: (found := mails_to(engine, address, kind)) and len(found) >= count and found,
                      timeout=10, what=f"{count} {kind} mail(s) to {address}")


def link_in(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"https?://\S+/signin/\S+", body.get_content())
    assert found, body.get_content()
    return found.group(0)


def sign_in(site: WebSite, client: Client, address: str) -> None:
    """The whole sign-in: ask for a link, take it from the outbox, open it, press the button."""
    before = len(mails_to(site.writer, address))
    token = client.csrf("/signin")
    asked = client.post("/signin", {"csrf": token, "email": address, "next": "/tickets"})
    assert asked.status == 200, asked.text[:500]
    mails = wait_for_mail(site.writer, address, before + 1)
    path = local_path(link_in(mails[-1]))
    token = client.csrf(path)
    done = client.post(path, {"csrf": token})
    assert done.status == 303 and done.header("location") == "/tickets", (done.status, done.text[:300])


# -- rows ------------------------------------------------------------------------------------


def _t(model: Any) -> Any:
    return model.__table__


@dataclass
class Store:
    """Writes customers, tickets, messages, attachments and events as the lifecycle would."""

    engine: Engine
    next_number: int = 700000

    def customer(self, address: str, name: str = "", *, organisation: str | None = None,
                 language: str | None = None) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(insert(_t(Customer)).returning(_t(Customer).c.id), {
                "email": address, "name": name, "language": language, "organisation": organisation,
                "notifications_off": False, "created_at": datetime.now(UTC),
            }).scalar_one())

    def ticket(self, customer_id: int, subject: str, *, department: str | None = None,
               organisation: str | None = None, status: str = "new", assignee: str | None = None,
               created: datetime | None = None, updated: datetime | None = None) -> tuple[int, int]:
        """A ticket with its "created" event; returns (id, number)."""
        created = created or datetime.now(UTC) - timedelta(hours=3)
        self.next_number += 1
        number = self.next_number
        with self.engine.begin() as conn:
            ticket_id = int(conn.execute(insert(_t(Ticket)).returning(_t(Ticket).c.id), {
                "number": number, "subject": subject, "status": status, "customer_id": customer_id,
                "mailbox": "support@telenta.example", "department": department, "organisation": organisation,
                "assignee": assignee, "priority": "normal", "tags": "", "fields": "{}", "missing_fields": "",
                "created_at": created, "updated_at": updated or created,
            }).scalar_one())
        self.event(ticket_id, "created", "new", at=created)
        return ticket_id, number

    def event(self, ticket_id: int, kind: str, status: str | None = None, *, at: datetime | None = None,
              actor: str = "", detail: str = "") -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(_t(TicketEvent)), {
                "ticket_id": ticket_id, "at": at or datetime.now(UTC), "kind": kind, "status": status,
                "actor": actor, "detail": detail,
            })

    def message(self, ticket_id: int, text_body: str, *, author: str, direction: str = "in",
                kind: str = "customer", visibility: str = "public", html: str = "", subject: str = "",
                trace: str = "{}", at: datetime | None = None, body: str = "") -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(insert(_t(Message)).returning(_t(Message).c.id), {
                "ticket_id": ticket_id, "direction": direction, "kind": kind, "author": author,
                "message_id": f"<{uuid.uuid4().hex}@test.example>", "subject": subject, "text": text_body,
                "body_hash": "", "thread_by": "", "visibility": visibility, "html": html, "trace": trace,
                "created_at": at or datetime.now(UTC), "body": body or text_body,
            }).scalar_one())

    def attachment(self, message_id: int, filename: str, data: bytes, content_type: str = "application/pdf",
                   content_id: str | None = None) -> int:
        digest = hashlib.sha256(data).hexdigest()
        with self.engine.begin() as conn:
            found = conn.execute(select(_t(Attachment).c.id).where(_t(Attachment).c.sha256 == digest)).scalar()
            if found is None:
                found = conn.execute(insert(_t(Attachment)).returning(_t(Attachment).c.id), {
                    "sha256": digest, "size": len(data), "data": data, "created_at": datetime.now(UTC),
                }).scalar_one()
            return int(conn.execute(insert(_t(MessageAttachment)).returning(_t(MessageAttachment).c.id), {
                "message_id": message_id, "attachment_id": found, "filename": filename,
                "content_type": content_type, "content_id": content_id,
            }).scalar_one())

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()


# -- the people and organisations of the web tests -------------------------------------------

ALFA, BETA = "Alfa Fastigheter AB", "Beta Bygg AB"
AGENT_FIRE = "agent.fire@telenta.example"
AGENT_BURGLARY = "agent.burglary@telenta.example"
MANAGER_ALFA = "chef@alfa.example"


def test_directory() -> Directory:
    return Directory(
        departments=[
            Department("fire", members=[AGENT_FIRE], title="Brandlarm"),
            Department("burglary", members=[AGENT_BURGLARY], title="Inbrottslarm"),
        ],
        organisations=[
            Organisation(ALFA, domains=["alfa.example"], department="fire", managers=[MANAGER_ALFA]),
            Organisation(BETA, domains=["beta.example"], department="burglary"),
        ],
    )


def test_agents() -> tuple[Agent, ...]:
    return (
        Agent(name="Fia Brand", address=AGENT_FIRE, departments=("fire",)),
        Agent(name="Ivar Inbrott", address=AGENT_BURGLARY, departments=("burglary",)),
    )


def site_for(db: Database, **kwargs: Any) -> WebSite:
    port = free_port()
    limits = kwargs.pop("limits", ROOMY)
    config = web_config(db.url, port, agents=test_agents(), **kwargs)
    return WebSite(config, test_directory(), limits=limits)
