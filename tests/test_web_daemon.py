"""The web history served by the real daemon (`postdesk serve`), end to end in headless Chromium:
a customer mails support over SMTP, asks for a sign-in link on the page, takes it from the mail
the daemon relayed to the sink, signs in and finds the ticket. The daemon then stops cleanly.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Daemon, Database, Sink, free_port, make_mail, unique_address, wait_until
from tests.web.browser import screenshot
from tests.web.fixtures import browser  # noqa: F401


@pytest.fixture
def web_daemon(sink: Sink, tmp_path: Path) -> Iterator[tuple[Daemon, str]]:
    db = Database("sqlite", tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    daemon = Daemon(db, sink, tmp_path / "daemon.log", env_extra={
        "POSTDESK_WEB__ENABLED": "true",
        "POSTDESK_WEB__LISTEN": f"127.0.0.1:{port}",
        "POSTDESK_WEB__BASE_URL": base,
        "POSTDESK_SECRET": "daemon-web-test-secret",
        "POSTDESK_STORE_DIR": str(tmp_path / "store"),
    }).start()

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    try:
        wait_until(listening, what=f"the web history on port {port}: {daemon.log()}")
        yield daemon, base
    finally:
        daemon.stop()
        db.drop()


def _signin_link(sink: Sink, address: str) -> str:
    for received in sink.wait_for(address, 2):
        body = received.message.get_body(("plain",))
        found = re.search(r"https?://\S+/signin/\S+", body.get_content() if body else "")
        if found:
            return found.group(0)
    raise AssertionError(f"no sign-in link among the mail to {address}")


def test_signin_by_link_through_the_daemon(web_daemon: tuple[Daemon, str], sink: Sink, browser: Any) -> None:
    daemon, base = web_daemon
    address = unique_address("webkund")
    subject = "Brandlarmet i trapphus B piper"
    daemon.send(make_mail(sender=address, subject=subject, name="Karin Kund"), sender=address)
    sink.wait_for(address, 1)

    context = browser.new_context(locale="sv-SE")
    page = context.new_page()
    page.goto(f"{base}/signin")
    page.get_by_label("E-postadress").fill(address)
    page.get_by_role("button", name="Skicka en inloggningslänk").click()
    page.get_by_role("heading", name="Titta i din e-post").wait_for()
    link = _signin_link(sink, address)
    assert link.startswith(f"{base}/signin/")
    page.goto(link)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url(f"{base}/tickets")
    page.get_by_role("link", name=subject).wait_for()
    screenshot(page, "daemon-list-sv")
    page.get_by_role("link", name=subject).click()
    assert "Brandlarmet i trapphus B piper" in page.inner_text("h1")
    assert "Hello, the alarm keeps ringing." in page.inner_text("main")
    screenshot(page, "daemon-ticket-sv")
    # The link was spent: opening it again shows the refusal, not a sign-in button.
    page.goto(link)
    assert page.get_by_role("heading", name="Länken kan inte användas").is_visible()
    context.close()

    assert daemon.stop() == 0
    assert "web history on" in daemon.log()
