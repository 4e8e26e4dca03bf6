"""The web history in real headless Chromium: a customer's list and ticket page with a download,
the organisation manager's view, the agent's view with internal notes, and the feedback page.

Each test signs in the way a person does (the form, the mail, the link, the button) and saves a
screenshot of every page it checks under tests/artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.web.browser import screenshot
from tests.web.fixtures import INTERNAL_NOTE, PDF, World, browser, sqlite_db, world  # noqa: F401
from tests.web.site import AGENT_FIRE, MANAGER_ALFA, link_in, local_path, mails_to, wait_for_mail


def _sign_in(page: Any, w: World, address: str, shot: str | None = None) -> None:
    before = len(mails_to(w.site.writer, address))
    page.goto(f"{w.site.base}/tickets")
    assert page.url.startswith(f"{w.site.base}/signin")
    page.get_by_label("E-mail address").fill(address)
    page.get_by_role("button", name="Send me a sign-in link").click()
    page.get_by_role("heading", name="Check your mail").wait_for()
    if shot:
        screenshot(page, f"{shot}-sent")
    mails = wait_for_mail(w.site.writer, address, before + 1)
    page.goto(w.site.base + local_path(link_in(mails[-1])))
    if shot:
        screenshot(page, f"{shot}-confirm")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{w.site.base}/tickets")


def _numbers(page: Any) -> set[int]:
    hrefs = page.eval_on_selector_all("table.tickets a", "links => links.map(a => a.getAttribute('href'))")
    return {int(m.group(1)) for href in hrefs if (m := re.fullmatch(r"/tickets/(\d+)", href))}


def test_customer_list_ticket_page_and_attachment(browser: Any, world: World) -> None:
    w = world
    context = browser.new_context(locale="en-GB", accept_downloads=True)
    page = context.new_page()
    page.goto(f"{w.site.base}/signin")
    screenshot(page, "signin")
    _sign_in(page, w, w.anna, shot="signin")

    assert page.get_by_role("heading", name="My tickets").is_visible()
    assert _numbers(page) == {w.ta, w.ta_resolved}
    screenshot(page, "customer-list")

    page.get_by_label("Status").select_option("resolved")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r".*status=resolved.*"))
    assert _numbers(page) == {w.ta_resolved}

    page.goto(f"{w.site.base}/tickets")
    page.get_by_role("link", name="Fire alarm keeps ringing").click()
    page.wait_for_url(f"{w.site.base}/tickets/{w.ta}")
    body = page.inner_text("main")
    assert "The panel shows fault 42." in body
    # The agent's HTML answer is shown as formatting, not as markup.
    assert page.locator(".body.html strong").inner_text() == "reset"
    assert INTERNAL_NOTE not in page.content()
    assert "Waiting until assigned" in body and "20 min" in body
    assert "Waiting for customer" in body  # the status history
    screenshot(page, "customer-ticket")

    with page.expect_download() as info:
        page.get_by_role("link", name=f"report-{w.ta}.pdf").click()
    download = info.value
    assert download.suggested_filename == f"report-{w.ta}.pdf"
    assert Path(download.path()).read_bytes() == PDF + str(w.ta).encode()
    answer = page.request.get(f"{w.site.base}/tickets/{w.ta}/attachments/{w.public_file[w.ta]}")
    assert answer.status == 200
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["x-content-type-options"] == "nosniff"

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="sv-SE")
    phone.add_cookies(context.cookies())
    phone_page = phone.new_page()
    phone_page.goto(f"{w.site.base}/tickets")
    assert phone_page.get_by_role("heading", name="Mina ärenden").is_visible()
    screenshot(phone_page, "customer-list-phone-sv")
    phone.close()
    context.close()


def test_organisation_manager_sees_the_organisation(browser: Any, world: World) -> None:
    w = world
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    _sign_in(page, w, MANAGER_ALFA)
    assert _numbers(page) == {w.ta, w.ta2, w.ta_resolved}
    assert "Bertil Berg" in page.inner_text("table.tickets")
    screenshot(page, "manager-list")
    page.goto(f"{w.site.base}/tickets/{w.ta2}")
    assert "Smoke detector in stairwell" in page.inner_text("h1")
    assert INTERNAL_NOTE not in page.content()
    screenshot(page, "manager-ticket")
    page.goto(f"{w.site.base}/tickets/{w.tb}")
    assert page.get_by_role("heading", name="Not found").is_visible()
    context.close()


def test_agent_sees_departments_with_internal_notes(browser: Any, world: World) -> None:
    w = world
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    _sign_in(page, w, AGENT_FIRE)
    assert _numbers(page) == {w.ta, w.ta2, w.ta_resolved}
    screenshot(page, "agent-list")
    page.goto(f"{w.site.base}/tickets/{w.ta}")
    note = page.locator("article.internal")
    assert INTERNAL_NOTE in note.inner_text()
    note.locator("summary").click()
    assert "subject tag" in note.locator("details.trace").inner_text()
    assert page.get_by_role("heading", name="Event log").is_visible()
    screenshot(page, "agent-ticket")
    context.close()


def test_feedback_page(browser: Any, world: World) -> None:
    from gateway.links.web import feedback_links

    w = world
    links = feedback_links(w.site.config, w.ta_resolved)
    context = browser.new_context(locale="ro-RO")
    page = context.new_page()
    page.goto(links[4])
    assert page.get_by_label("4 din 5").is_checked(), "the score clicked in the mail is chosen"
    page.get_by_label("Doriți să adăugați ceva? (opțional)").fill("Rapid și politicos.")
    screenshot(page, "feedback-ro")
    page.get_by_role("button", name="Trimiteți evaluarea").click()
    assert "nota 4 din 5" in page.inner_text("main")
    assert "Vă mulțumim pentru comentariu." in page.inner_text("main")
    rows = w.store.scalar("SELECT count(*) FROM rating r JOIN ticket t ON t.id = r.ticket_id "
                          "WHERE t.number = :n AND r.score = 4 AND r.agent = :a AND r.comment = :c",
                          n=w.ta_resolved, a=AGENT_FIRE, c="Rapid și politicos.")
    assert rows == 1
    context.close()
