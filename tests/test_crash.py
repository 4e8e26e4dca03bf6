"""Nothing lost: `kill -9` in the middle of concurrent SMTP deliveries, then restart.

Every message that got a 250 must end as exactly one ticket with its confirmation delivered.
The only duplicates allowed are confirmations that were in flight to the relay at the kill
(handed to the relay, not yet marked sent); the test counts and prints them.
"""

from __future__ import annotations

import signal
import smtplib
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.harness import Daemon, Database, Sink, make_mail, wait_until

TOTAL = 300
CLIENTS = 8
KILL_AFTER = 120


def _deliver(daemon: Daemon, senders: list[str], accepted: list[str], lock: threading.Lock,
             enough: threading.Event) -> None:
    client: smtplib.SMTP | None = None
    for sender in senders:
        try:
            if client is None:
                client = smtplib.SMTP("127.0.0.1", daemon.port, timeout=10)
            client.sendmail(sender, ["support@telenta.example"], make_mail(sender=sender, subject=f"crash {sender}"))
        except (smtplib.SMTPException, OSError):
            client = None  # the daemon is gone: this message got no 250, so it is not ours to keep
            continue
        with lock:
            accepted.append(sender)
            if len(accepted) >= KILL_AFTER:
                enough.set()


@pytest.mark.slow
@pytest.mark.parametrize("fresh_db", ["sqlite", "postgresql"], indirect=True)
def test_kill_9_loses_nothing(fresh_db: Database, tmp_path: Path) -> None:
    sink = Sink().start()
    try:
        daemon = Daemon(fresh_db, sink, tmp_path / "daemon.log").start()
        senders = [f"crash-{i}@kund.example" for i in range(TOTAL)]
        accepted: list[str] = []
        lock, enough = threading.Lock(), threading.Event()
        threads = [
            threading.Thread(target=_deliver, args=(daemon, senders[i::CLIENTS], accepted, lock, enough))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        assert enough.wait(60), f"only {len(accepted)} accepted before the kill: {daemon.log()}"
        daemon.stop(signal.SIGKILL)
        for thread in threads:
            thread.join(60)
        confirmed_before_restart = len(sink.messages)
        daemon.start()
        for sender in accepted:
            sink.wait_for(sender, 1, timeout=60)
        # Customers' mail goes before the staff's: the last confirmation does not mean the
        # notices queued with it went too. Nothing lost means the whole outbox drains.
        wait_until(lambda: fresh_db.scalar("SELECT count(*) FROM outbox WHERE state != 'sent'") == 0,
                   timeout=60, what="the outbox drained")
        daemon.stop()

        tickets = Counter(
            row[0] for row in fresh_db.rows(
                "SELECT c.email FROM ticket t JOIN customer c ON c.id = t.customer_id")
        )
        for sender in accepted:
            assert tickets[sender] == 1, f"{sender}: {tickets[sender]} tickets"
        # The customers' mail only: the triage team also hears of each of these tickets.
        confirmations = Counter(rcpt for m in sink.messages for rcpt in m.rcpt_tos if rcpt in senders)
        duplicates = sum(count - 1 for count in confirmations.values() if count > 1)
        print(f"\naccepted {len(accepted)} of {TOTAL}; confirmations before restart {confirmed_before_restart}; "
              f"tickets {sum(tickets.values())}; duplicate confirmations {duplicates}")
        # A duplicate is only possible for mail handed to the relay but not yet marked sent:
        # at most one sender batch per relay connection.
        assert duplicates <= 64
        assert fresh_db.scalar("SELECT count(*) FROM inbound WHERE state = 'queued'") == 0
        assert fresh_db.scalar("SELECT count(*) FROM outbox WHERE state != 'sent'") == 0
    finally:
        sink.stop()
