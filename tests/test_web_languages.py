"""The customer and staff pages in Swedish and Romanian, in real headless Chromium, with times in
the reader's zone (Europe/Stockholm, Europe/Bucharest) and the zone named.

The staff page shows each message's new words with the quoted history folded away (<details>),
inline `cid:` images served from the store, image previews of attachments, outgoing mail
labelled as what it is (a confirmation is a confirmation), the trace as a table, the SLA targets
explained, and none of the customer's personal links from the mail we sent them.

With POSTDESK_DOCS_SCREENSHOTS=1 the screenshots the README shows are written to docs/.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.config import Agent
from gateway.i18n import formats
from gateway.i18n.catalogues import gettext
from gateway.routing.directory import Department, Directory, Organisation
from tests.harness import REPO, Database, free_port
from tests.web.browser import screenshot
from tests.web.fixtures import browser, sqlite_db  # noqa: F401
from tests.web.site import Store, WebSite, link_in, local_path, mails_to, wait_for_mail, web_config

SV_ORG, RO_ORG = "Brf Solgläntan", "Tecnet Client SRL"
SV_AGENT, RO_AGENT = "lina.berg@telenta.example", "andrei.pop@telenta.example"
SV_CUSTOMER, RO_CUSTOMER = "styrelsen@solglantan.example", "ioana@tecnet-client.example"
QUOTED = "> Den 30 nov. 2026 skrev Support:\n> Vi har tagit emot ditt ärende."
DOCS = REPO / "docs"


def png(width: int = 48, height: int = 24) -> bytes:
    """A small valid PNG (a red block), made here so the test needs no image file."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@dataclass
class Desk:
    site: WebSite
    sv_ticket: int
    ro_ticket: int
    created: datetime


def _directory() -> Directory:
    return Directory(
        departments=[Department("fire", members=[SV_AGENT], title="Brandlarm Stockholm"),
                     Department("ro-support", members=[RO_AGENT], title="Suport România")],
        organisations=[
            Organisation(SV_ORG, domains=["solglantan.example"], department="fire", language="sv",
                         timezone="Europe/Stockholm"),
            Organisation(RO_ORG, domains=["tecnet-client.example"], department="ro-support", language="ro",
                         timezone="Europe/Bucharest"),
        ],
    )


def _seed(store: Store, base_url: str, email: str, org: str, department: str, agent: str, lang: str,
          created: datetime) -> int:
    customer = store.customer(email, "Styrelsen" if lang == "sv" else "Ioana Popescu", organisation=org)
    tid, number = store.ticket(customer, "Brandlarmet tjuter" if lang == "sv" else "Alarma de incendiu sună",
                               department=department, organisation=org, status="in_progress", created=created,
                               updated=created + timedelta(hours=2))
    store.event(tid, "assigned", actor=agent, at=created + timedelta(minutes=12))
    store.event(tid, "status", "in_progress", actor=agent, at=created + timedelta(minutes=12))
    new = "Larmet går igen i trapphus B." if lang == "sv" else "Alarma sună din nou pe scara B."
    first = store.message(tid, new, author=email, subject="Re: larm", at=created + timedelta(minutes=1),
                          body=f"{new}\n\n{QUOTED}",
                          html=f'<p>{new}</p><p><img src="cid:plan-{lang}@kund" alt="plan"></p>'
                               f"<blockquote>{QUOTED}</blockquote>",
                          trace='{"kind": "customer", "thread": "subject tag", "rules": {"support@telenta.example":'
                                ' ["10-topics: fire"]}, "notes": []}')
    store.attachment(first, "plan.png", png(), "image/png", content_id=f"<plan-{lang}@kund>")
    store.attachment(first, "foto.png", png(30, 30), "image/png")
    store.message(tid, f"Ditt ärende har fått nummer {number}.\nFölj det här: {base_url}/t/SECRET-TOKEN-{lang}\n",
                  author="support@telenta.example", direction="out", kind="confirmation", visibility="mail",
                  subject=f"[#{number}] larm", at=created + timedelta(seconds=5))
    store.message(tid, "Vi skickar en tekniker." if lang == "sv" else "Trimitem un tehnician.", author=agent,
                  direction="out", kind="agent", at=created + timedelta(minutes=30))
    store.message(tid, "Intern: kontrollera avtalet.", author=agent, direction="note", kind="note",
                  visibility="internal", at=created + timedelta(minutes=40))
    return number


@pytest.fixture(scope="module")
def desk(sqlite_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    port = free_port()
    agents = (Agent(name="Lina Berg", address=SV_AGENT, departments=("fire",), language="sv",
                    timezone="Europe/Stockholm"),
              Agent(name="Andrei Pop", address=RO_AGENT, departments=("ro-support",), language="ro",
                    timezone="Europe/Bucharest"))
    config = web_config(sqlite_db.url, port, agents=agents, store_dir=tmp_path_factory.mktemp("store"))
    site = WebSite(config, _directory())
    store = Store(site.writer)
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    sv = _seed(store, site.base, SV_CUSTOMER, SV_ORG, "fire", SV_AGENT, "sv", created)
    ro = _seed(store, site.base, RO_CUSTOMER, RO_ORG, "ro-support", RO_AGENT, "ro", created)
    yield Desk(site, sv, ro, created)
    site.stop()


def _sign_in(page: Any, desk: Desk, address: str, lang: str) -> None:
    before = len(mails_to(desk.site.writer, address))
    page.goto(f"{desk.site.base}/signin")
    page.get_by_label(gettext(lang, "E-mail address")).fill(address)
    page.get_by_role("button", name=gettext(lang, "Send me a sign-in link")).click()
    page.get_by_role("heading", name=gettext(lang, "Check your mail")).wait_for()
    page.goto(desk.site.base + local_path(link_in(wait_for_mail(desk.site.writer, address, before + 1)[-1])))
    page.get_by_role("button", name=gettext(lang, "Sign in")).click()
    page.wait_for_url(f"{desk.site.base}/tickets")


def _shot(page: Any, name: str, docs: str | None = None) -> None:
    screenshot(page, name)
    if docs and os.environ.get("POSTDESK_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / docs), full_page=True)


CASES = [("sv", SV_CUSTOMER, "Europe/Stockholm", "sv-SE"), ("ro", RO_CUSTOMER, "Europe/Bucharest", "ro-RO")]


@pytest.mark.parametrize(("lang", "address", "zone", "locale"), CASES)
def test_customer_pages_in_their_language_and_zone(browser: Any, desk: Desk, lang: str, address: str, zone: str,
                                                   locale: str) -> None:
    context = browser.new_context(locale=locale)
    page = context.new_page()
    _sign_in(page, desk, address, lang)
    number = desk.sv_ticket if lang == "sv" else desk.ro_ticket
    assert page.get_by_role("heading", name=gettext(lang, "My tickets")).is_visible()
    listing = page.inner_text("main")
    assert formats.when(desk.created, lang, zone) in listing, "created, in the customer's zone"
    assert f"({zone})" in listing
    _shot(page, f"{lang}-customer-list", "customer-list.png" if lang == "sv" else None)

    page.goto(f"{desk.site.base}/tickets/{number}")
    main = page.locator("main")
    assert formats.when(desk.created + timedelta(minutes=12), lang, zone) in main.inner_text()
    assert "SECRET-TOKEN" not in page.content(), "the confirmation copy is not shown to customers either"
    quoted = page.locator("details.whole").first
    assert not quoted.locator(".body").is_visible(), "the quoted history starts folded"
    assert page.get_by_text(gettext(lang, "Agent reply"), exact=True).first.is_visible()
    _shot(page, f"{lang}-customer-ticket", "customer-ticket.png" if lang == "sv" else None)
    quoted.locator("summary").click()
    assert quoted.locator("blockquote").is_visible()
    context.close()


@pytest.mark.parametrize(("lang", "agent", "zone"), [("sv", SV_AGENT, "Europe/Stockholm"),
                                                       ("ro", RO_AGENT, "Europe/Bucharest")])
def test_staff_ticket_page(browser: Any, desk: Desk, lang: str, agent: str, zone: str) -> None:
    # A browser asking for none of our languages: the sign-in form is in the default (English),
    # the pages once signed in in the agent's own language.
    context = browser.new_context(locale="de-DE", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    _sign_in(page, desk, agent, "en")
    number = desk.sv_ticket if lang == "sv" else desk.ro_ticket
    page.goto(f"{desk.site.base}/tickets/{number}")
    text = page.inner_text("main")
    assert formats.when(desk.created + timedelta(minutes=1), lang, zone) in text
    # Outgoing mail is labelled as what it is, folded; the customer's personal link is gone.
    sent = page.locator("details.message.sent")
    assert gettext(lang, "Confirmation") in sent.locator("summary").inner_text()
    assert gettext(lang, "Internal note") not in sent.inner_text()
    sent.locator("summary").click()
    assert gettext(lang, "[personal link of the customer, not shown]") in sent.inner_text()
    assert "SECRET-TOKEN" not in page.content()
    # The customer's new words, the history folded; the inline image loads from the store.
    first = page.locator("article.message").first
    assert "trapphus B" in first.inner_text() or "scara B" in first.inner_text()
    assert not first.locator("details.whole blockquote").is_visible()
    first.locator("details.whole summary").click()
    inline = first.locator("details.whole img[alt=plan]")
    assert inline.evaluate("img => img.complete && img.naturalWidth") == 48
    previews = first.locator("img.preview")
    assert previews.count() == 2 and previews.nth(1).evaluate("img => img.naturalWidth") == 30
    # The trace as a table with words, the SLA targets explained.
    first.locator("details.trace summary").click()
    trace = first.locator("table.trace").inner_text()
    assert gettext(lang, "Found its ticket by") in trace and "subject tag" in trace and "{" not in trace
    assert gettext(lang, "assignment") in page.locator("table.sla").inner_text()
    assert f"({zone})" in text
    _shot(page, f"{lang}-staff-ticket", "staff-ticket.png" if lang == "sv" else None)
    context.close()


def test_outbox_page_for_staff_only(browser: Any, desk: Desk) -> None:
    from sqlalchemy import insert, select

    from gateway.db.tables import OUTBOX, TICKET

    with desk.site.writer.begin() as conn:
        ticket_id = conn.execute(select(TICKET.c.id).where(TICKET.c.number == desk.sv_ticket)).scalar_one()
        conn.execute(insert(OUTBOX), {"created_at": desk.created, "next_attempt_at": datetime.now(UTC), "kind": "confirmation",
                                      "ticket_id": ticket_id, "mail_from": "support@telenta.example",
                                      "rcpt_to": SV_CUSTOMER, "message_id": "<waiting@test>", "raw": b"x",
                                      "state": "pending", "attempts": 3, "last_error": "connection refused"})
    context = browser.new_context(locale="sv-SE")
    page = context.new_page()
    _sign_in(page, desk, SV_AGENT, "sv")
    page.get_by_role("link", name="Utgående mail").click()
    row = page.locator("table.outbox tr.state-pending", has_text=SV_CUSTOMER)
    assert "connection refused" in row.inner_text() and "väntar, nästa försök" in row.inner_text()
    assert RO_CUSTOMER not in page.inner_text("table.outbox"), "another department's mail"
    _shot(page, "sv-outbox")
    context.close()
    customer = browser.new_context(locale="sv-SE")
    page = customer.new_page()
    _sign_in(page, desk, SV_CUSTOMER, "sv")
    page.goto(f"{desk.site.base}/outbox")
    assert page.get_by_role("heading", name="Hittades inte").is_visible()
    customer.close()
