"""Customers' mail leaves before staff mail when both wait; staff mail waits no longer than `staff_wait`.

A real daemon on each store sends to a real SMTP sink over one relay connection, so the order of
arrival at the sink is the order of sending. First end to end: the sink holds the sender's first
mail while customers write in, so that their confirmations and the staff's notices about their
tickets all wait together; once the sink lets go, every confirmation arrives before any notice.
Then rows written straight into the outbox, as `gateway.notify` writes them: in one batch and
across batches, and staff mail that has waited past the bound goes in its turn.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from gateway.db.tables import OUTBOX
from tests.harness import Daemon, Database, Sink, make_mail, unique_address, wait_until

CUSTOMERS = 6


class Gate(Sink):
    """A sink that holds the first mail it is given until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Waits off the sink's event loop: the sender's session stalls, the sink does not.
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 60)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def gate(backend: Database) -> Iterator[Gate]:
    """A closed gate for each store's daemon."""
    server = Gate()
    server.start()
    yield server
    server.gate.set()
    server.stop()


@pytest.fixture(scope="module")
def daemon(backend: Database, gate: Gate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    # One session to the relay, one mail per claim: the order of arrival is the order of the claims.
    # The held mail must not time out meanwhile (it would be sent again).
    env = {"POSTDESK_RELAY__CONNECTIONS": "1", "POSTDESK_OUTBOX__BATCH_SIZE": "1", "POSTDESK_RELAY__TIMEOUT": "120"}
    proc = Daemon(backend, gate, tmp_path_factory.mktemp("order") / "daemon.log", env_extra=env).start()
    yield proc
    proc.stop()


def _lane(rcpts: list[str], customers: set[str]) -> str:
    return "customer" if customers & set(rcpts) else "staff"


def test_confirmations_overtake_the_staff_notices_queued_before_them(daemon: Daemon, gate: Gate) -> None:
    customers = [unique_address("first") for _ in range(CUSTOMERS)]
    for customer in customers:
        daemon.send(make_mail(sender=customer, subject="Larmet tjuter"), sender=customer)
    # Every ticket opened: its confirmation and its notices to staff are in the outbox, waiting.
    wait_until(lambda: daemon.db.scalar("SELECT count(*) FROM outbox WHERE kind = 'confirmation'") == CUSTOMERS,
               what="every confirmation queued")
    notices = daemon.db.scalar("SELECT count(*) FROM outbox WHERE kind LIKE 'staff:%'")
    assert notices >= CUSTOMERS, "the example desk tells staff of each new ticket"
    gate.gate.set()
    total = daemon.db.scalar("SELECT count(*) FROM outbox")
    assert gate.wait_total(total, timeout=60) == total
    # The first mail was claimed before the others were queued; after it, the customers' lane first.
    lanes = [_lane(m.rcpt_tos, set(customers)) for m in gate.messages[1:]]
    waiting_customers = lanes.count("customer")
    assert waiting_customers >= CUSTOMERS - 1
    assert lanes[:waiting_customers] == ["customer"] * waiting_customers, lanes


def _row(rcpt: str, kind: str, due: datetime) -> dict[str, Any]:
    raw = make_mail(sender="support@telenta.example", subject=f"{kind} {rcpt}", to=rcpt)
    return {"created_at": due, "next_attempt_at": due, "ticket_id": None, "kind": kind,
            "mail_from": "support@telenta.example", "rcpt_to": rcpt, "message_id": f"<{uuid.uuid4().hex}@x>",
            "raw": raw, "state": "pending", "attempts": 0, "last_error": ""}


def test_staff_mail_waits_behind_customers_but_no_longer_than_the_bound(daemon: Daemon, gate: Gate) -> None:
    gate.gate.set()
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    # Oldest first in the table: staff mail due long ago (past the 60 s bound), then staff mail
    # of each staff kind due just now, then the customers' mail of every kind that goes to
    # someone waiting for it.
    overdue = [(f"overdue-{tag}-{i}@telenta.example", "staff:new") for i in range(3)]
    fresh = [(f"fresh-{tag}-{kind.replace(':', '-')}@telenta.example", kind)
             for kind in ("staff:new", "agent:result", "admin", "postmaster", "staff:sweep")]
    customers = [(f"kund-{tag}-{kind}@kund.example", kind)
                 for kind in ("confirmation", "resolved", "question", "third_party_question", "signin", "reply")]
    rows = ([_row(address, kind, now - timedelta(minutes=10)) for address, kind in overdue]
            + [_row(address, kind, now) for address, kind in fresh + customers])
    before = len(gate.messages)
    with daemon.db.engine.begin() as conn:
        conn.execute(insert(OUTBOX), rows)
    assert gate.wait_total(before + len(rows), timeout=60) == before + len(rows)
    arrived = [m.rcpt_tos[0] for m in gate.messages[before:]]
    assert arrived == [address for address, _ in overdue + customers + fresh]


def test_staff_mail_alone_is_not_held_back(daemon: Daemon, gate: Gate) -> None:
    """No customer waiting: staff mail goes at once, whatever the bound."""
    gate.gate.set()
    address = unique_address("alone")
    with daemon.db.engine.begin() as conn:
        conn.execute(insert(OUTBOX), [_row(address, "staff:new", datetime.now(UTC))])
    assert len(gate.wait_for(address, timeout=20)) == 1
