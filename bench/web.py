"""Page times of the web history with 100,000 tickets in the store: p50/p95 per page and role.

Fills a fresh database (SQLite in a temporary folder by default, or --url) with tickets of many
customers, organisations and departments through SQLAlchemy Core, serves the real app with
uvicorn on a free loopback port, and times sequential requests over one keep-alive connection:
the ticket list (first page, a filtered page, a deep page) and one ticket page, for a customer,
an organisation manager, a department agent and a support lead. The baseline is the same run
without the three indexes the lists of managers and agents read in order; then the schema as
migrated. Prints figures;
asserts nothing.

    python bench/web.py [--tickets 100000] [--requests 200] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import random
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert, text

from gateway.config import Agent, Config, DatabaseConfig, WebConfig
from gateway.db.engine import make_engine, upgrade
from gateway.db.models import Attachment, Customer, Message, MessageAttachment, Ticket, TicketEvent
from gateway.links.web import SESSION_TTL, Purpose, Tokens
from gateway.routing.directory import Department, Directory, Organisation
from gateway.web.app import create_app
from gateway.web.server import WebServer

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
ORGS, DEPARTMENTS, CUSTOMERS = 40, 12, 20_000
CUSTOMER, MANAGER, AGENT, LEAD = "bench.customer@org0.example", "chef@org0.example", "agent@telenta.example", "lead@telenta.example"
STATUSES = ["new", "in_progress", "waiting_customer", "waiting_third_party", "resolved", "closed", "closed", "resolved"]
# The indexes proposed for the lists of managers and agents: they filter on one column and
# sort by last activity.
# The indexes the lists of organisation managers and agents read in order (migrations 0005
# and 0006); the baseline has none of them, as before 0005.
LIST_INDEXES = {
    "ix_ticket_organisation_updated": "organisation, updated_at",
    "ix_ticket_department_updated": "department, updated_at",
    "ix_ticket_assignee_updated": "assignee, updated_at",
}

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def fill(engine: Engine, tickets: int) -> int:
    """Bulk-insert the store; returns the number of the ticket whose page is timed."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    customers = [{"id": i + 1, "email": f"c{i}@org{i % ORGS}.example" if i else CUSTOMER, "name": f"Customer {i}",
                  "language": None, "organisation": f"Org {i % ORGS}", "notifications_off": False,
                  "created_at": now} for i in range(CUSTOMERS)]
    ticket_rows, message_rows, event_rows = [], [], []
    for i in range(tickets):
        # The bench customer (id 1) has 60 tickets; the others share the rest at random.
        customer = 1 if i < 60 else rng.randrange(2, CUSTOMERS + 1)
        created = now - timedelta(minutes=rng.randrange(1, 60 * 24 * 700))
        updated = created + timedelta(minutes=rng.randrange(0, 60 * 24 * 20))
        status = STATUSES[i % len(STATUSES)]
        ticket_rows.append({
            "id": i + 1, "number": 100000 + i, "subject": f"Alarm fault {i}", "status": status,
            "customer_id": customer, "mailbox": "support@telenta.example",
            "department": f"dept-{i % DEPARTMENTS}", "organisation": f"Org {(customer - 1) % ORGS}",
            "assignee": None if status == "new" else AGENT, "priority": "normal", "tags": "", "fields": "{}",
            "missing_fields": "", "created_at": created, "updated_at": updated,
        })
        for n in range(2):
            message_rows.append({
                "ticket_id": i + 1, "direction": "in" if n == 0 else "out", "kind": "customer" if n == 0 else "confirmation",
                "author": "x@org.example", "message_id": f"<{i}.{n}@bench>", "subject": f"Alarm fault {i}",
                "text": "The panel shows fault 42.\n" * 5, "body_hash": "", "thread_by": "", "visibility": "public",
                "html": "", "trace": "{}", "created_at": created + timedelta(seconds=n),
            })
        event_rows.append({"ticket_id": i + 1, "at": created, "kind": "created", "status": "new", "actor": "", "detail": ""})
        if status != "new":
            at = created + timedelta(minutes=15)
            event_rows += [
                {"ticket_id": i + 1, "at": at, "kind": "assigned", "status": None, "actor": AGENT, "detail": ""},
                {"ticket_id": i + 1, "at": at, "kind": "status", "status": status, "actor": AGENT, "detail": ""},
            ]
    with engine.begin() as conn:
        for table, rows in ((Customer, customers), (Ticket, ticket_rows), (Message, message_rows),
                            (TicketEvent, event_rows)):
            for chunk in _chunks(rows):
                conn.execute(insert(table.__table__), chunk)  # type: ignore[attr-defined]
        # The timed ticket page: the bench customer's first ticket, with a long thread and files.
        for n in range(30):
            message_id = conn.execute(insert(Message.__table__).returning(Message.__table__.c.id), {  # type: ignore[attr-defined]
                "ticket_id": 1, "direction": "in" if n % 2 else "out", "kind": "customer", "author": CUSTOMER,
                "message_id": f"<thread.{n}@bench>", "subject": "Alarm fault 0", "text": "Reply text.\n" * 20,
                "body_hash": "", "thread_by": "", "visibility": "public" if n % 5 else "internal",
                "html": "<p>Hello <b>there</b></p>" * 10 if n % 3 == 0 else "", "trace": '{"thread": "subject"}',
                "created_at": now - timedelta(hours=30 - n),
            }).scalar_one()
            if n % 4 == 0:
                attachment_id = conn.execute(insert(Attachment.__table__).returning(Attachment.__table__.c.id), {  # type: ignore[attr-defined]
                    "sha256": f"{n:064d}", "size": 1000, "data": b"x" * 1000, "created_at": now}).scalar_one()
                conn.execute(insert(MessageAttachment.__table__), {  # type: ignore[attr-defined]
                    "message_id": message_id, "attachment_id": attachment_id, "filename": f"photo-{n}.jpg",
                    "content_type": "image/jpeg", "content_id": None})
    return 100000


def _config(url: str, port: int, store: Path) -> Config:
    return Config(
        secret=SECRET, database=DatabaseConfig(url=url), templates_dir=REPO / "templates", store_dir=store,
        web=WebConfig(listen=f"127.0.0.1:{port}", base_url=f"http://127.0.0.1:{port}"),
        agents=(Agent(name="Agent", address=AGENT, departments=("dept-0",)),
                Agent(name="Lead", address=LEAD, role="lead")),
    )


def _directory() -> Directory:
    return Directory(
        departments=[Department(f"dept-{i}", title=f"Department {i}") for i in range(DEPARTMENTS)],
        organisations=[Organisation(f"Org {i}", domains=[f"org{i}.example"], managers=[MANAGER] if i == 0 else [])
                       for i in range(ORGS)],
    )


@contextmanager
def serving(config: Config, engine: Engine) -> Iterator[int]:
    port = int(config.web.listen.rsplit(":", 1)[1])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = create_app(config, engine, directory=_directory())
    server = WebServer(app, "127.0.0.1", port, on_stop=app.state.web.close)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(15)
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _timer(port: int, cookie: str) -> Callable[[str, int], list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def run(path: str, count: int) -> list[float]:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": f"postdesk_session={cookie}"})
            answer = conn.getresponse()
            answer.read()
            times.append((time.perf_counter() - started) * 1000)
            if answer.status != 200:
                raise RuntimeError(f"{path}: HTTP {answer.status}")
        return times

    return run


def _report(label: str, times: list[float]) -> None:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"  {label:<44} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n={len(ordered)})")


def measure(port: int, tokens: Tokens, requests: int) -> None:
    pages = [("/tickets", "list, first page"), ("/tickets?status=open", "list, open only"),
             ("/tickets?page=40", "list, page 40")]
    for who, email in (("customer", CUSTOMER), ("organisation manager", MANAGER), ("department agent", AGENT),
                       ("support lead", LEAD)):
        cookie = tokens.dumps(Purpose.SESSION, {"c": "bench", "e": email, "s": None}, SESSION_TTL)
        run = _timer(port, cookie)
        run("/tickets", 5)  # warm the connection, templates and caches
        for path, label in pages:
            if who == "customer" and "page=40" in path:
                continue
            _report(f"{who}: {label}", run(path, requests))
        if who in ("customer", "support lead"):
            _report(f"{who}: ticket page (30 messages, 8 files)", run("/tickets/100000", requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--url", help="database URL (default: a fresh SQLite file in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/bench-web.db"
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        fill(engine, args.tickets)
        print(f"{args.tickets} tickets, {CUSTOMERS} customers, {ORGS} organisations, {DEPARTMENTS} departments "
              f"stored in {time.perf_counter() - started:.1f} s ({engine.dialect.name})")
        config = _config(url, _free_port(), Path(tmp))
        tokens = Tokens(config.secret_key())
        plain = create_engine(url)
        with plain.begin() as conn:  # the baseline: a plain index on assignee, as before 0005
            for name in LIST_INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
            conn.execute(text("CREATE INDEX ix_ticket_assignee ON ticket (assignee)"))
        print("without the list indexes (baseline):")
        with serving(config, engine) as port:
            measure(port, tokens, args.requests)
        with plain.begin() as conn:
            conn.execute(text("DROP INDEX ix_ticket_assignee"))
            for name, columns in LIST_INDEXES.items():
                conn.execute(text(f"CREATE INDEX {name} ON ticket ({columns})"))
        plain.dispose()
        print("schema as migrated:")
        with serving(config, engine) as port:
            measure(port, tokens, args.requests)
        engine.dispose()


if __name__ == "__main__":
    main()
