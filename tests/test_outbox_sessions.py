"""The sender keeps its relay sessions open: many mails per SMTP session, a refusal ends none.

A real daemon on each store, `relay.connections` = 2, sends to a real SMTP sink that counts the
sessions mail arrived on (each client connection has its own peer address). Customers write in;
their confirmations and the staff's notices about their tickets (three or so mails a ticket)
must arrive over at most two sessions. Then the sink refuses one recipient for good (550) and
another for now (451): their mail is marked dead or retried, everyone else's still arrives, and
over the same sessions.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.harness import REPO, Daemon, Database, Sink, make_mail, unique_address, wait_until

CONNECTIONS = 2
CUSTOMERS = 12


class Counting(Sink):
    """A sink that notes the peer (address, port) of the session each mail came over."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[tuple[str, int]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(tuple(session.peer))  # type: ignore[arg-type]
        return await super().handle_DATA(server, session, envelope)

    def sessions(self) -> int:
        return len(set(self.peers))


@pytest.fixture(scope="module")
def counting(backend: Database) -> Iterator[Counting]:
    """A fresh counting sink for each store's daemon."""
    server = Counting()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def daemon(backend: Database, counting: Counting, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    env = {"POSTDESK_RELAY__CONNECTIONS": str(CONNECTIONS)}
    proc = Daemon(backend, counting, tmp_path_factory.mktemp("sessions") / "daemon.log", env_extra=env).start()
    yield proc
    proc.stop()


def _sent(daemon: Daemon, customers: list[str]) -> bool:
    states = [daemon.db.scalar("SELECT state FROM outbox WHERE rcpt_to = :c", c=c) for c in customers]
    return states == ["sent"] * len(customers)


def test_many_mails_travel_over_few_sessions(daemon: Daemon, counting: Counting) -> None:
    customers = [unique_address("reuse") for _ in range(CUSTOMERS)]
    for customer in customers:
        daemon.send(make_mail(sender=customer, subject="Larmet tjuter"), sender=customer)
    for customer in customers:
        counting.wait_for(customer, timeout=60)
    wait_until(lambda: daemon.db.scalar("SELECT count(*) FROM outbox WHERE state = 'pending'") == 0,
               timeout=60, what="the outbox drained")
    mails = len(counting.messages)
    assert mails >= 2 * CUSTOMERS, "each ticket's confirmation and its notices to staff"
    assert counting.sessions() <= CONNECTIONS < mails


def test_a_refused_recipient_ends_no_session(daemon: Daemon, counting: Counting) -> None:
    gone, busy = unique_address("gone"), unique_address("busy")
    others = [unique_address("fine") for _ in range(6)]
    answers = {gone: "550 5.1.1 mailbox unavailable", busy: "451 4.3.0 try again later"}
    counting.refuse = lambda rcpts: next((answers[r] for r in rcpts if r in answers), None)
    try:
        for customer in [others[0], gone, others[1], busy, *others[2:]]:
            daemon.send(make_mail(sender=customer, subject="Hej"), sender=customer)
        for customer in others:
            counting.wait_for(customer, timeout=60)
        wait_until(lambda: daemon.db.scalar("SELECT state FROM outbox WHERE rcpt_to = :c", c=gone) == "dead",
                   timeout=60, what="the refused confirmation dead")
        wait_until(lambda: (daemon.db.scalar("SELECT attempts FROM outbox WHERE rcpt_to = :c", c=busy) or 0) >= 2,
                   timeout=60, what="the deferred confirmation tried again")
        assert daemon.db.scalar("SELECT state FROM outbox WHERE rcpt_to = :c", c=busy) == "pending"
        assert "550 5.1.1" in daemon.db.scalar("SELECT last_error FROM outbox WHERE rcpt_to = :c", c=gone)
        assert [len(counting.to(c)) for c in others] == [1] * len(others)
        # The refusals were answered inside the session (RSET, next mail): none was dropped, so
        # no session beyond the pool's was ever opened (three refusals would have opened three).
        assert counting.sessions() <= CONNECTIONS
    finally:
        counting.refuse = lambda rcpts: None
    counting.wait_for(busy, timeout=60)
    wait_until(lambda: _sent(daemon, others + [busy]), timeout=60, what="everyone's mail recorded as sent")


def test_the_size_announced_is_what_data_sends() -> None:
    """SIZE (RFC 1870) counts the message as DATA writes it: bare LF and CR become CRLF."""
    from aiosmtplib.protocol import normalize_message_line_endings

    from gateway.outbox import _wire_size

    for raw in (b"a\r\nb\r\n", b"a\nb\n", b"a\rb\r\n\r\n", b"mixed\r\nlf\ncr\r.\r\n", b"", b"no end", b"cr end\r"):
        assert _wire_size(raw) == len(normalize_message_line_endings(raw))


class Stalling(Sink):
    """A relay that takes the message of one recipient and then never answers."""

    def __init__(self, stalled: str) -> None:
        super().__init__()
        self.stalled = stalled
        self.released = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stalled in envelope.rcpt_tos:
            # Hold the session until the test ends: the client must give up by its own deadline.
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait)
        return await super().handle_DATA(server, session, envelope)


def test_a_relay_that_stops_answering_fails_that_mail_in_its_time_and_the_next_goes(tmp_path: Path) -> None:
    # One deadline for the whole mail (relay.timeout): MAIL and RCPT are answered, the end of
    # DATA never is. The attempt must fail as a timeout, its session be dropped, and the next
    # mail go over a new one.
    from gateway.config import load_config
    from gateway.outbox import Sender

    relay = Stalling("stuck@kund.example").start()
    config = load_config(REPO / "config" / "postdesk.yaml", environ={
        "POSTDESK_SECRET": "outbox-secret", "POSTDESK_STORE_DIR": str(tmp_path),
        "POSTDESK_DATABASE__URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "POSTDESK_RELAY__PORT": str(relay.port), "POSTDESK_RELAY__TIMEOUT": "0.5", "POSTDESK_RELAY__CONNECTIONS": "1"})
    sender = Sender(None, config, "test")  # type: ignore[arg-type]
    raw = make_mail(sender="support@telenta.example", subject="Tack")

    def row(row_id: int, to: str) -> Any:
        return SimpleNamespace(id=row_id, mail_from="support@telenta.example", rcpt_to=to, raw=raw)

    async def both() -> tuple[Any, Any]:
        # Without a deadline this would wait on the relay until the test's own timeout.
        stuck = await sender._send_one(0, row(1, "stuck@kund.example"))
        assert sender._clients[0] is None, "the session that timed out is dropped"
        after = await sender._send_one(0, row(2, "kund@kund.example"))
        await sender.close()
        return stuck, after

    try:
        stuck, after = asyncio.run(both())
    finally:
        relay.released.set()
        relay.stop()
    assert not stuck.ok and not stuck.permanent and "TimeoutError" in stuck.error
    assert after.ok and [m.rcpt_tos for m in relay.messages] == [["kund@kund.example"]]
