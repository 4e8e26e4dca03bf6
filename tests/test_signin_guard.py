"""Sign-in against a real daemon on each store: the per-address limit survives a restart (it is
kept in the database), sign-in mail passes the automatic-mail budget like every other automatic
mail, and a ticket link does not replace the session of somebody else signed in in that browser
without asking.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.harness import Daemon, Database, Sink, make_mail, unique_address, wait_until
from tests.web.site import Client, mails_to, sign_in


@pytest.fixture(scope="module")
def daemon(backend: Database, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon on each store (the `backend` fixture: SQLite and PostgreSQL)."""
    folder = tmp_path_factory.mktemp("signin")
    db = backend
    # Two automatic mails per recipient, refilled slowly: a confirmation and one sign-in mail.
    proc = Daemon(db, sink, folder / "daemon.log", env_extra={
        "POSTDESK_GUARD__PER_RECIPIENT__CAPACITY": "2", "POSTDESK_GUARD__PER_RECIPIENT__PER_HOUR": "0.01",
    }).start()
    yield proc
    proc.stop()


def _customer(daemon: Daemon, sink: Sink) -> tuple[str, str]:
    """A customer with a ticket; returns the address and the ticket link from the confirmation."""
    address = unique_address("signin")
    daemon.send(make_mail(sender=address, subject="Dörren låser inte", body="Hej!\n"), sender=address)
    text = sink.wait_for(address)[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"https?://[^\s/]+(/t/\S+)", text)
    assert found, text
    return address, found.group(1)


def _web_up(daemon: Daemon) -> bool:
    try:
        socket.create_connection(("127.0.0.1", daemon.web_port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _ask(client: Client, address: str) -> int:
    return client.post("/signin", {"csrf": client.csrf("/signin"), "email": address}).status


def test_signin_limit_survives_a_restart(daemon: Daemon, sink: Sink) -> None:
    address, _ = _customer(daemon, sink)
    client = Client(daemon.web_port)
    assert [_ask(client, address) for _ in range(3)] == [200, 200, 200]
    daemon.stop()
    daemon.start()
    wait_until(lambda: _web_up(daemon), what="the web listener after the restart")
    assert _ask(Client(daemon.web_port), address) == 429, "the restart forgot the three requests"
    hits = daemon.db.scalar("SELECT count(*) FROM signinhit WHERE scope = 'address' AND key = :a", a=address)
    assert hits == 3


def test_signin_mail_passes_the_recipients_budget(daemon: Daemon, sink: Sink) -> None:
    address, _ = _customer(daemon, sink)  # the confirmation took one of the two
    client = Client(daemon.web_port)
    assert _ask(client, address) == 200
    wait_until(lambda: mails_to(daemon.db.engine, address), what="the first sign-in mail")
    assert _ask(client, address) == 200, "the page is the same either way"
    wait_until(lambda: f"sign-in link not sent: budget rcpt:{address}" in daemon.log(), what="the budget's refusal")
    assert len(mails_to(daemon.db.engine, address)) == 1


def test_ticket_link_asks_before_replacing_a_signed_in_session(daemon: Daemon, sink: Sink, tmp_path: Path) -> None:
    first, _ = _customer(daemon, sink)
    second, link = _customer(daemon, sink)
    client = Client(daemon.web_port)
    sign_in(SimpleNamespace(writer=daemon.db.engine), client, first)  # type: ignore[arg-type]
    session = dict(client.jar)
    asked = client.get(link)
    assert asked.status == 200 and first in asked.text and second in asked.text
    assert client.jar == session, "the session is unchanged until the question is answered"
    assert first in client.get("/tickets").text
    answered = client.post(link, {"csrf": client.csrf(link)})
    assert answered.status == 303 and answered.header("location").startswith("/tickets/")
    assert client.jar != session
    assert client.get(answered.header("location")).status == 200


def test_ticket_link_without_a_session_opens_the_ticket(daemon: Daemon, sink: Sink) -> None:
    _, link = _customer(daemon, sink)
    opened = Client(daemon.web_port).get(link)
    assert opened.status == 303 and opened.header("location").startswith("/tickets/")
