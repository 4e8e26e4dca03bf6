"""The web history's defences: escaping, single-use and expiring links, rate limits, CSRF,
cookie flags, attachment headers, the feedback link, ticket links and page language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer

from gateway.links.web import Tokens, feedback_links, ticket_link
from gateway.web.ratelimit import Limit
from tests.harness import Database
from tests.web.browser import screenshot
from tests.web.fixtures import World, browser, sqlite_db, world  # noqa: F401
from tests.web.site import (
    AGENT_FIRE,
    ALFA,
    Client,
    Store,
    WebSite,
    link_in,
    local_path,
    mails_to,
    sign_in,
    site_for,
    wait_for_mail,
)

XSS = {
    "subject": '<script>window.pwned=1</script>"><img src=x onerror="window.pwned=2">',
    "body": '<img src=x onerror="window.pwned=3"><svg onload="window.pwned=4">',
    "html": '<p>ok</p><script>window.pwned=5</script><img src="x" onerror="window.pwned=6">'
            '<a href="javascript:window.pwned=7">click</a><iframe src="javascript:1"></iframe>',
    "filename": '"><img src=x onerror="window.pwned=8">.pdf',
    "name": '<b onmouseover="window.pwned=9">Mallory</b><script>window.pwned=10</script>',
}


@pytest.fixture(scope="module")
def xss_ticket(world: World) -> tuple[str, int]:
    """A customer whose name, subject, body, HTML mail and file name are all attacks."""
    store = world.store
    address = "mallory@alfa.example"
    cid = store.customer(address, XSS["name"], organisation=ALFA)
    tid, number = store.ticket(cid, XSS["subject"], department="fire", organisation=ALFA)
    first = store.message(tid, XSS["body"], author=address, subject=XSS["subject"])
    store.attachment(first, XSS["filename"], b"%PDF-1.4 evil")
    store.message(tid, "", author=address, html=XSS["html"])
    return address, number


def test_xss_payloads_render_inert(world: World, xss_ticket: tuple[str, int], browser: Any) -> None:
    address, number = xss_ticket
    client = world.site.client()
    sign_in(world.site, client, address)
    for path in ("/tickets", f"/tickets/{number}"):
        html = client.get(path).text
        assert "<script>window.pwned" not in html and "onerror=\"window" not in html
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    page_html = client.get(f"/tickets/{number}").text
    assert "javascript:" not in page_html and "<iframe" not in page_html

    # In the browser: the attacks are on the page as text, and none became an element or ran.
    context = browser.new_context(locale="en-GB")
    context.add_cookies([{"name": k, "value": v, "url": world.site.base} for k, v in client.jar.items()])
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for path in ("/tickets", f"/tickets/{number}"):
        page.goto(world.site.base + path)
        page.hover("main")
        hostile = page.eval_on_selector_all(
            "main script, main iframe, main svg, main [onerror], main [onload], main [onmouseover], "
            "main a[href^='javascript']", "nodes => nodes.length")
        assert hostile == 0
        assert page.evaluate("window.pwned") is None
    text = page.inner_text("main")
    assert XSS["filename"] in text and '<svg onload="window.pwned=4">' in text
    screenshot(page, "xss-ticket")
    assert dialogs == []
    context.close()


def test_signin_link_works_once(world: World) -> None:
    site = world.site
    client = site.client()
    sign_in(site, client, world.anna)
    path = local_path(link_in(mails_to(site.writer, world.anna)[-1]))
    again = site.client()
    assert again.get(path).status == 400
    token = again.csrf("/signin")
    reused = again.post(path, {"csrf": token})
    assert reused.status == 400 and "already been used" in reused.text
    assert "postdesk_session" not in again.jar or again.get("/tickets").status == 303


def test_expired_tampered_and_foreign_links_are_refused(world: World) -> None:
    site = world.site
    tokens = Tokens(site.config.secret_key())
    expired = tokens.signin(world.anna, now=datetime.now(UTC) - timedelta(hours=1))
    good = tokens.signin(world.anna)
    payload, _, signature = good.rpartition(".")
    flipped = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    other_key = URLSafeSerializer(b"not our secret", salt="postdesk.web.signin").dumps(
        {"e": world.anna, "j": "x", "n": "", "x": 4102444800})
    cecilia_claims = {"e": world.cecilia, "j": "y", "n": "", "x": 4102444800}
    forged = URLSafeSerializer(b"", salt="postdesk.web.signin").dumps(cecilia_claims)
    feedback_as_signin = tokens.feedback(world.ta_resolved, 5)
    for name, token in (("expired", expired), ("flipped", flipped), ("other key", other_key),
                        ("forged", forged), ("feedback token", feedback_as_signin), ("garbage", "abc.def")):
        client = site.client()
        assert client.get(f"/signin/{token}").status == 400, name
        answer = client.post(f"/signin/{token}", {"csrf": client.csrf("/signin")})
        assert answer.status == 400, name
        assert client.get("/tickets").status == 303, name
    # The untouched token still works: the refusals above were about the changes.
    client = site.client()
    assert client.get(f"/signin/{good}").status == 200
    assert client.post(f"/signin/{good}", {"csrf": client.csrf(f"/signin/{good}")}).status == 303
    # Ticket and feedback links are checked the same way.
    assert site.client().get("/t/" + tokens.ticket(world.ta, world.anna)[:-2] + "xx").status == 400
    old_ticket = tokens.ticket(world.ta, world.anna, now=datetime.now(UTC) - timedelta(days=400))
    assert site.client().get(f"/t/{old_ticket}").status == 400
    assert site.client().get("/feedback/" + tokens.feedback(world.ta_resolved, 5)[:-2] + "xx").status == 400


@pytest.fixture
def strict_site(tmp_path: Path) -> Iterator[WebSite]:
    db = Database("sqlite", tmp_path)
    site = site_for(db, limits=(Limit(2, 600), Limit(4, 600)), store_dir=tmp_path)
    yield site
    site.stop()
    db.drop()


def test_rate_limits_per_address_and_per_client(strict_site: WebSite) -> None:
    site = strict_site
    store = Store(site.writer)
    known = "kim@alfa.example"
    store.customer(known, "Kim")
    client = site.client()

    def ask(address: str, who: Client) -> int:
        return who.post("/signin", {"csrf": who.csrf("/signin"), "email": address}).status

    assert [ask(known, client), ask(known, client), ask(known, client)] == [200, 200, 429]
    assert len(wait_for_mail(site.writer, known, 2)) == 2
    # Another client may not use up more of that address's allowance either.
    assert ask(known, site.client(**{"X-Forwarded-For": "192.0.2.7"})) == 429
    # Per client: one client asking for many addresses is stopped whatever the addresses are.
    other = site.client(**{"X-Forwarded-For": "192.0.2.8"})
    answers = [ask(f"nobody{i}@example.org", other) for i in range(6)]
    assert answers == [200, 200, 200, 200, 429, 429]
    assert mails_to(site.writer, "nobody0@example.org") == []
    assert len(mails_to(site.writer, known)) == 2


def test_known_and_unknown_addresses_get_the_same_page(world: World) -> None:
    site = world.site
    pages = []
    before = len(mails_to(site.writer, world.bertil))
    # The stranger first: by the time the known address's mail is queued, the stranger's
    # request has long been handled, and must have queued nothing.
    for address in ("stranger@nowhere.example", world.bertil):
        client = site.client()
        answer = client.post("/signin", {"csrf": client.csrf("/signin"), "email": address})
        pages.append((answer.status, re.sub(r'value="[^"]+"', "", answer.text.replace(address, "ADDRESS"))))
    assert pages[0] == pages[1]
    wait_for_mail(site.writer, world.bertil, before + 1)
    assert mails_to(site.writer, "stranger@nowhere.example") == []


def test_forms_without_the_csrf_token_are_refused(world: World) -> None:
    site = world.site
    client = site.client()
    token = client.csrf("/signin")
    before = len(mails_to(site.writer, world.bertil))
    assert client.post("/signin", {"email": world.bertil}).status == 403
    assert client.post("/signin", {"email": world.bertil, "csrf": "guess"}).status == 403
    cross = client.post("/signin", {"email": world.bertil, "csrf": token}, Origin="https://evil.example")
    assert cross.status == 403
    # Without a session cookie (a cross-site post under SameSite=Lax) the token cannot match.
    assert site.client().post("/signin", {"email": world.bertil, "csrf": token}).status == 403
    assert len(mails_to(site.writer, world.bertil)) == before

    sign_in(site, client, world.anna)
    assert client.post("/signout", {}).status == 403
    assert client.get("/tickets").status == 200
    fb = feedback_links(site.config, world.ta_resolved)[3]
    assert client.post(local_path(fb), {"comment": "forged"}).status == 403
    signout = client.post("/signout", {"csrf": client.csrf("/tickets")})
    assert signout.status == 303
    assert client.get("/tickets").status == 303


def test_cookie_and_page_headers(world: World, tmp_path: Path) -> None:
    answer = world.site.client().get("/signin")
    cookie = answer.header("set-cookie")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert "default-src 'none'" in answer.header("content-security-policy")
    assert "script-src" not in answer.header("content-security-policy")
    assert answer.header("x-frame-options") == "DENY"
    assert answer.header("cache-control") == "no-store"

    db = Database("sqlite", tmp_path)
    https_site = site_for(db, base_url="https://support.telenta.example", store_dir=tmp_path)
    try:
        cookie = https_site.client().get("/signin").header("set-cookie")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    finally:
        https_site.stop()
        db.drop()


def test_attachment_headers_and_active_types(world: World) -> None:
    store = world.store
    address = "html-sender@alfa.example"
    cid = store.customer(address, "Html Sender", organisation=ALFA)
    tid, number = store.ticket(cid, "Page attached", department="fire", organisation=ALFA)
    message = store.message(tid, "see attached", author=address)
    page_id = store.attachment(message, "page.html", b"<script>alert(1)</script>", "text/html")
    odd_id = store.attachment(message, "r\u00e4kning\n\"x\".pdf", b"%PDF odd", "application/pdf")
    client = world.site.client()
    sign_in(world.site, client, address)
    page = client.get(f"/tickets/{number}/attachments/{page_id}")
    assert page.status == 200 and page.body == b"<script>alert(1)</script>"
    assert page.header("content-type") == "application/octet-stream"
    assert page.header("x-content-type-options") == "nosniff"
    assert page.header("content-disposition") == "attachment; filename=\"page.html\"; filename*=UTF-8''page.html"
    assert "sandbox" in page.header("content-security-policy")
    odd = client.get(f"/tickets/{number}/attachments/{odd_id}")
    assert odd.header("content-type") == "application/pdf"
    assert odd.header("content-disposition") == (
        "attachment; filename=\"r_kning_x_.pdf\"; filename*=UTF-8''r%C3%A4kning%22x%22.pdf")


def test_feedback_link_records_a_rating_once(world: World) -> None:
    store = world.store
    cid = store.customer("rater@alfa.example", "Rater", organisation=ALFA)
    tid, number = store.ticket(cid, "Rate me", department="fire", organisation=ALFA, status="resolved",
                               assignee=AGENT_FIRE)
    _open_id, open_number = store.ticket(cid, "Not done yet", department="fire", organisation=ALFA)
    links = feedback_links(world.site.config, number)
    client = world.site.client()
    # A mail scanner fetches every link of the mail: no GET records anything.
    pages = [world.site.client().get(local_path(links[score])) for score in range(1, 6)]
    assert all(page.status == 200 and "Send rating" in page.text for page in pages)
    assert store.scalar("SELECT count(*) FROM rating WHERE ticket_id = :t", t=tid) == 0
    first = client.get(local_path(links[2]))
    assert re.search(r'value="2" checked', first.text), "the clicked score is chosen"
    assert first.text.count("<button") == 1 and 'name="comment"' in first.text
    path = local_path(links[2])
    token = re.search(r'name="csrf" value="([^"]+)"', first.text).group(1)  # type: ignore[union-attr]
    assert client.post(path, {"score": "2"}).status == 403, "no CSRF token, no rating"
    assert store.scalar("SELECT count(*) FROM rating WHERE ticket_id = :t", t=tid) == 0
    posted = client.post(path, {"csrf": token, "score": "2"})
    assert posted.status == 200 and "You rated ticket" in posted.text
    late = world.site.client()
    second = late.post(local_path(links[5]), {"csrf": late.csrf("/signin"), "score": "5"})
    assert second.status == 200 and "was rated 2 of 5" in second.text
    rows = store.scalar("SELECT count(*) FROM rating WHERE ticket_id = :t", t=tid)
    assert rows == 1
    assert store.scalar("SELECT score FROM rating WHERE ticket_id = :t", t=tid) == 2
    assert store.scalar("SELECT agent FROM rating WHERE ticket_id = :t", t=tid) == AGENT_FIRE
    assert client.post(path, {"csrf": token, "comment": "Quick <b>help</b>"}).status == 200
    assert client.post(path, {"csrf": token, "comment": "overwrite"}).status == 200
    assert store.scalar("SELECT comment FROM rating WHERE ticket_id = :t", t=tid) == "Quick <b>help</b>"
    # An unresolved ticket cannot be rated.
    unresolved = world.site.client().get(local_path(feedback_links(world.site.config, open_number)[5]))
    assert unresolved.status == 200 and "cannot be rated yet" in unresolved.text
    assert store.scalar("SELECT count(*) FROM rating r JOIN ticket t ON t.id = r.ticket_id "
                        "WHERE t.number = :n", n=open_number) == 0


def test_ticket_link_opens_that_ticket_only(world: World) -> None:
    client = world.site.client()
    link = ticket_link(world.site.config, world.ta, world.anna)
    opened = client.get(local_path(link))
    assert opened.status == 303 and opened.header("location") == f"/tickets/{world.ta}"
    page = client.get(f"/tickets/{world.ta}")
    assert page.status == 200 and "Fire alarm keeps ringing" in page.text
    # Anna's other ticket needs a real sign-in: the link was about one ticket.
    assert client.get(f"/tickets/{world.ta_resolved}").status == 404
    listed = set(map(int, re.findall(r'href="/tickets/(\d+)"', client.get("/tickets").text)))
    assert listed == {world.ta}
    # A link for Anna's ticket mailed to somebody else shows them nothing of it.
    stranger = world.site.client()
    stranger.get(local_path(ticket_link(world.site.config, world.ta, world.cecilia)))
    assert stranger.get(f"/tickets/{world.ta}").status == 404


def test_page_language(world: World) -> None:
    store = world.store
    store.customer("ro-customer@alfa.example", "Ion Popescu", language="ro", organisation=ALFA)
    client = world.site.client()
    assert "Logga in" in client.get("/signin", **{"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"}).text
    assert "Autentificare" in client.get("/signin", **{"Accept-Language": "de-DE, ro;q=0.4"}).text
    assert "Sign in" in client.get("/signin", **{"Accept-Language": "de-DE"}).text
    customer = world.site.client(**{"Accept-Language": "de-DE"})
    sign_in(world.site, customer, "ro-customer@alfa.example")
    assert "Tichetele mele" in customer.get("/tickets").text
    ro_mail = mails_to(world.site.writer, "ro-customer@alfa.example")[-1]
    assert "autentificare" in str(ro_mail["Subject"]).lower()


def test_links_of_one_secret_share_their_serializers_and_another_secret_is_refused() -> None:
    """`ticket_link` keeps one `Tokens` per secret (building one costs 20 us a mail); a link made
    under one secret must still read under that secret only."""
    from gateway.links.web import tokens_of

    first, other = b"a" * 32, b"b" * 32
    assert tokens_of(first) is tokens_of(first)
    assert tokens_of(first) is not tokens_of(other)
    token = tokens_of(first).ticket(100123, "anna@kund.example")
    assert Tokens(first).read_ticket(token) is not None
    assert Tokens(other).read_ticket(token) is None
