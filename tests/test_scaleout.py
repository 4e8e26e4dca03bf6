"""Scale-out: two daemons on one PostgreSQL database, one killed with SIGKILL in the middle.

Clients spray 2,000 messages across both daemons the way an MTA uses two MX hosts: each message
goes to one of them, and to the other when the first does not answer. Half-way, one daemon is
killed. The survivor takes over the work the dead one had leased once its leases expire
(`lease_seconds` is 10 here) and finishes everything. Every accepted message must end as
exactly one ticket whose confirmation was delivered; a second confirmation is allowed only for
mail the dead daemon had handed to the relay but not yet marked sent. The test counts and
prints those, and what the dead daemon held when it died.
"""

from __future__ import annotations

import signal
import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.harness import Daemon, Database, Sink, make_mail, wait_until

TOTAL = 2000
CLIENTS = 8
KILL_AFTER = 1000
LEASE = 10
# Seconds each client waits between messages: spreads 2,000 messages over about 10 s, so the
# kill lands while both daemons are taking, processing and sending mail, not after the burst.
PACE = 0.03


def _spray(daemons: list[Daemon], mails: list[tuple[int, str, bytes]], accepted: list[str],
           lock: threading.Lock, enough: threading.Event) -> None:
    """One client thread: persistent connections to both daemons, the other tried on failure."""
    clients: dict[int, smtplib.SMTP] = {}
    for index, sender, raw in mails:
        for attempt in range(2):
            daemon = daemons[(index + attempt) % 2]
            try:
                client = clients.get(daemon.port)
                if client is None:
                    client = clients[daemon.port] = smtplib.SMTP("127.0.0.1", daemon.port, timeout=20)
                client.sendmail(sender, ["support@telenta.example"], raw)
            except (smtplib.SMTPException, OSError):
                # No 250 from this one: like an MTA, try the other MX with the same message.
                clients.pop(daemon.port, None)
                continue
            with lock:
                accepted.append(sender)
                if len(accepted) >= KILL_AFTER:
                    enough.set()
            break
        time.sleep(PACE)
    for client in clients.values():
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            pass


@pytest.mark.slow
@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_two_daemons_one_killed_nothing_lost_nothing_doubled(fresh_db: Database, tmp_path: Path) -> None:
    started = time.monotonic()
    sink = Sink().start()
    # A directory without people: the customers' mail is what this test counts and times, not
    # the staff's notices of 2,000 tickets (tests/test_reach.py shows those).
    nobody, no_rules = tmp_path / "directory.yaml", tmp_path / "rules"
    nobody.write_text("departments: {}\n", encoding="utf-8")
    no_rules.mkdir()
    env = {
        "POSTDESK_RULES__DIRECTORY": str(nobody),
        "POSTDESK_RULES__DIR": str(no_rules),
        "POSTDESK_PROCESSOR__LEASE_SECONDS": str(LEASE),
        "POSTDESK_OUTBOX__LEASE_SECONDS": str(LEASE),
        "POSTDESK_WEB__ENABLED": "false",
        "POSTDESK_METRICS__LISTEN": "",
        "POSTDESK_LOGGING__LEVEL": "WARNING",
    }
    doomed = Daemon(fresh_db, sink, tmp_path / "doomed.log", env_extra=env).start()
    survivor = Daemon(fresh_db, sink, tmp_path / "survivor.log", env_extra=env).start()
    doomed_name, survivor_name = doomed.env()["POSTDESK_INSTANCE"], survivor.env()["POSTDESK_INSTANCE"]
    try:
        mails = [(i, f"scale-{i}@kund.example", make_mail(sender=f"scale-{i}@kund.example", subject=f"Scale {i}"))
                 for i in range(TOTAL)]
        accepted: list[str] = []
        lock, enough = threading.Lock(), threading.Event()
        threads = [threading.Thread(target=_spray, args=([doomed, survivor], mails[i::CLIENTS], accepted, lock, enough))
                   for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        assert enough.wait(60), f"only {len(accepted)} accepted before the kill"
        sink.wait_total(KILL_AFTER // 5, timeout=30)
        doomed.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        accepted_at_kill = len(accepted)
        held_inbound = [row[0] for row in fresh_db.rows(
            "SELECT id FROM inbound WHERE state = 'queued' AND claim LIKE :me", me=f"{doomed_name}/%")]
        held_outbox = fresh_db.scalar(
            "SELECT count(*) FROM outbox WHERE state = 'pending' AND claim LIKE :me AND lease_until IS NOT NULL",
            me=f"{doomed_name}/%")
        done_at_kill = Counter(row[0].split("/", 1)[0] for row in fresh_db.rows(
            "SELECT claim FROM inbound WHERE state = 'done'"))
        for thread in threads:
            thread.join(90)
        assert len(accepted) == len(set(accepted))

        # Everything must now come from the survivor, including what the dead one had leased.
        for sender in accepted:
            sink.wait_for(sender, 1, timeout=max(5.0, 80 - (time.monotonic() - started)))
        finished_at = time.monotonic()
        # Customers' mail goes before the staff's: the last confirmation does not mean the
        # notices queued with it went too. Nothing lost means the whole outbox drains.
        wait_until(lambda: fresh_db.scalar("SELECT count(*) FROM outbox WHERE state != 'sent'") == 0,
                   timeout=60, what="the outbox drained")
        survivor.stop()

        tickets = Counter(row[0] for row in fresh_db.rows(
            "SELECT c.email FROM ticket t JOIN customer c ON c.id = t.customer_id"))
        wrong = {sender: tickets[sender] for sender in accepted if tickets[sender] != 1}
        assert not wrong, f"senders without exactly one ticket: {dict(list(wrong.items())[:10])}"
        assert sum(tickets.values()) == len(accepted)
        # The customers' mail only: the triage team also hears of each of these tickets.
        customers = set(accepted)
        confirmations = Counter(rcpt for message in sink.messages for rcpt in message.rcpt_tos if rcpt in customers)
        assert all(confirmations[sender] >= 1 for sender in accepted)
        resent = sum(count - 1 for count in confirmations.values() if count > 1)
        done_by = Counter(row[0].split("/", 1)[0] for row in fresh_db.rows(
            "SELECT claim FROM inbound WHERE state = 'done'"))
        taken_over = fresh_db.scalar(
            "SELECT count(*) FROM inbound WHERE id = ANY(:ids) AND state = 'done' AND claim LIKE :other",
            ids=held_inbound or [0], other=f"{survivor_name}/%")
        print(f"\naccepted {len(accepted)} of {TOTAL}; tickets {sum(tickets.values())}; inbound rows "
              f"{fresh_db.scalar('SELECT count(*) FROM inbound')}; processed by the killed daemon "
              f"{done_by[doomed_name]}, by the survivor {done_by[survivor_name]} ({done_at_kill[survivor_name]} "
              f"before the kill); accepted at the kill {accepted_at_kill}; "
              f"held by the killed daemon: {len(held_inbound)} inbound (taken over {taken_over}), "
              f"{held_outbox} outbox; confirmations {len(sink.messages)}, resent {resent}; "
              f"finished {finished_at - killed_at:.1f} s after the kill, {finished_at - started:.1f} s in all")
        assert len(accepted) == TOTAL  # the survivor took every message the dead one could not
        # Both were working when one died, and the survivor finished the dead one's leased work.
        assert done_at_kill[doomed_name] > 0 and done_at_kill[survivor_name] > 0
        assert taken_over == len(held_inbound)
        # Only mail in flight at the kill can go out twice: at most one claimed outbox batch.
        assert resent <= held_outbox
        assert fresh_db.scalar("SELECT count(*) FROM inbound WHERE state != 'done'") == 0
        assert fresh_db.scalar("SELECT count(*) FROM outbox WHERE state != 'sent'") == 0
    finally:
        for daemon in (doomed, survivor):
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.stop()
        sink.stop()
