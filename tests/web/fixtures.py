"""Fixtures the web test modules import: a headless browser and a seeded web site on SQLite.

Imported by name into each test module (pytest finds fixtures in a module's namespace), since
`tests/conftest.py` belongs to the whole suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Database
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.web.site import AGENT_BURGLARY, AGENT_FIRE, ALFA, BETA, Store, WebSite, site_for

PDF = b"%PDF-1.4\n% a small test report\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
INTERNAL_NOTE = "INTERNAL: customer has not paid the service contract"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class World:
    """Three customers of two organisations, their tickets, and who should see what."""

    site: WebSite
    store: Store
    anna: str
    bertil: str
    cecilia: str
    ta: int  # Anna's ticket: Alfa, fire department, with attachments and an internal note
    ta_resolved: int  # Anna's resolved ticket, assigned to the fire agent
    ta2: int  # Bertil's ticket: Alfa, fire department
    tb: int  # Cecilia's ticket: Beta, burglary department
    public_file: dict[int, int]  # ticket number -> attachment id on a public message
    internal_file: dict[int, int]  # ticket number -> attachment id on an internal note


def build_world(db: Database, tmp: Path) -> World:
    site = site_for(db, store_dir=tmp)
    store = Store(site.writer)
    now = datetime.now(UTC)
    anna, bertil, cecilia = "anna@alfa.example", "bertil@alfa.example", "cecilia@beta.example"
    anna_id = store.customer(anna, "Anna Andersson", organisation=ALFA)
    bertil_id = store.customer(bertil, "Bertil Berg", organisation=ALFA)
    cecilia_id = store.customer(cecilia, "Cecilia Ceder", organisation=BETA)
    public_file: dict[int, int] = {}
    internal_file: dict[int, int] = {}

    def ticket(customer_id: int, author: str, subject: str, department: str, org: str, hours: int) -> tuple[int, int]:
        created = now - timedelta(hours=hours)
        tid, number = store.ticket(customer_id, subject, department=department, organisation=org,
                                   status="in_progress", assignee=None, created=created,
                                   updated=now - timedelta(minutes=hours))
        store.event(tid, "assigned", actor="agent", at=created + timedelta(minutes=20))
        store.event(tid, "status", "in_progress", at=created + timedelta(minutes=20))
        message = store.message(tid, f"Hello, {subject.lower()}.\nThe panel shows fault 42.", author=author,
                                subject=subject, at=created)
        public_file[number] = store.attachment(message, f"report-{number}.pdf", PDF + str(number).encode())
        note = store.message(tid, INTERNAL_NOTE, author=AGENT_FIRE, direction="in", kind="note",
                             visibility="internal", trace='{"thread": "subject tag", "rules": ["10-topics: fire"]}',
                             at=created + timedelta(minutes=30))
        internal_file[number] = store.attachment(note, f"internal-{number}.txt", b"internal " + str(number).encode(),
                                                 "text/plain")
        return tid, number

    ta_id, ta = ticket(anna_id, anna, "Fire alarm keeps ringing", "fire", ALFA, 30)
    store.event(ta_id, "status", "waiting_customer", at=now - timedelta(hours=20), actor=AGENT_FIRE)
    store.event(ta_id, "status", "in_progress", at=now - timedelta(hours=18), actor=anna)
    store.message(ta_id, "", author=AGENT_FIRE, direction="out", kind="agent",
                  html="<p>We have <strong>reset</strong> the panel.</p>", at=now - timedelta(hours=19))
    _t2, ta2 = ticket(bertil_id, bertil, "Smoke detector in stairwell", "fire", ALFA, 20)
    _t3, tb = ticket(cecilia_id, cecilia, "Burglar alarm code lost", "burglary", BETA, 10)
    resolved_id, ta_resolved = store.ticket(anna_id, "Battery replaced", department="fire", organisation=ALFA,
                                            status="resolved", assignee=AGENT_FIRE,
                                            created=now - timedelta(days=3), updated=now - timedelta(days=2))
    store.event(resolved_id, "assigned", at=now - timedelta(days=3) + timedelta(minutes=5))
    store.event(resolved_id, "status", "in_progress", at=now - timedelta(days=3) + timedelta(minutes=5))
    store.event(resolved_id, "status", "resolved", at=now - timedelta(days=2), actor=AGENT_FIRE)
    store.message(resolved_id, "The battery is replaced.", author=anna, at=now - timedelta(days=3))
    return World(site, store, anna, bertil, cecilia, ta, ta_resolved, ta2, tb, public_file, internal_file)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database("sqlite", tmp_path_factory.mktemp("webdb"))
    yield db
    db.drop()


@pytest.fixture(scope="module")
def world(sqlite_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(sqlite_db, tmp_path_factory.mktemp("webstore"))
    yield built
    built.site.stop()


__all__ = ["AGENT_BURGLARY", "INTERNAL_NOTE", "PDF", "World", "browser", "build_world", "sqlite_db", "world"]
