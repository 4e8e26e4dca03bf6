"""Two daemons on one PostgreSQL database, replies to the same tickets arriving at both.

Customers answer their tickets from a mail client (Thunderbird's shape: `Re:` and the tag in the
subject, In-Reply-To our confirmation, References the whole chain), each reply to one of the two
daemons, many at once, so that both daemons' batches hold replies to the same tickets in every
order. None may end in quarantine (a deadlock is a retry, not poison) and every reply must be
on its ticket. Then the race of a follow-up sent to the other daemon right after its parent's
250: it must thread onto the parent's ticket, not open one of its own.
"""

from __future__ import annotations

import random
import re
import smtplib
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Daemon, Database, Sink, make_mail, wait_until

TICKETS = 40
REPLIES = 20
CLIENTS = 8
RACES = 100
TAG = re.compile(r"\[#(\d+)\]")


@pytest.fixture
def pair(fresh_db: Database, tmp_path: Path) -> Iterator[tuple[Daemon, Daemon, Sink]]:
    sink = Sink().start()
    env = {"POSTDESK_WEB__ENABLED": "false", "POSTDESK_METRICS__LISTEN": "", "POSTDESK_LOGGING__LEVEL": "WARNING",
           "POSTDESK_GUARD__PER_TICKET__CAPACITY": "1000", "POSTDESK_GUARD__PER_RECIPIENT__CAPACITY": "1000"}
    first = Daemon(fresh_db, sink, tmp_path / "a.log", env_extra=env).start()
    second = Daemon(fresh_db, sink, tmp_path / "b.log", env_extra=env).start()
    yield first, second, sink
    for daemon in (first, second):
        daemon.stop()
    sink.stop()


def _send_all(daemons: list[Daemon], jobs: list[tuple[int, str, bytes]], failures: list[str]) -> None:
    clients: dict[int, smtplib.SMTP] = {}
    for index, sender, raw in jobs:
        daemon = daemons[index % 2]
        try:
            client = clients.get(daemon.port)
            if client is None:
                client = clients[daemon.port] = smtplib.SMTP("127.0.0.1", daemon.port, timeout=30)
            client.sendmail(sender, ["support@telenta.example"], raw)
        except (smtplib.SMTPException, OSError) as exc:
            failures.append(f"{sender}: {exc}")
            clients.pop(daemon.port, None)
    for client in clients.values():
        client.quit()


def _reply(sender: str, number: int, subject: str, confirmation_id: str, original_id: str, n: int) -> bytes:
    return make_mail(sender=sender, subject=f"Re: [#{number}] {subject}", body=f"Reply {n}: still ringing.\n",
                     headers={"In-Reply-To": confirmation_id, "References": f"{original_id} {confirmation_id}",
                              "User-Agent": "Mozilla Thunderbird"})


def _in_parallel(daemons: list[Daemon], jobs: list[tuple[int, str, bytes]]) -> None:
    failures: list[str] = []
    threads = [threading.Thread(target=_send_all, args=(daemons, jobs[i::CLIENTS], failures)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[:5]


@pytest.mark.slow
@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_concurrent_replies_to_the_same_tickets_on_two_daemons(pair: tuple[Daemon, Daemon, Sink]) -> None:
    first, second, sink = pair
    db = first.db
    customers = [f"busy-{i}-{uuid.uuid4().hex[:6]}@kund.example" for i in range(TICKETS)]
    originals = {c: f"<open-{uuid.uuid4().hex}@kund.example>" for c in customers}
    _in_parallel([first, second], [(i, c, make_mail(sender=c, subject=f"Larm {i}", message_id=originals[c]))
                                   for i, c in enumerate(customers)])
    jobs: list[tuple[int, str, bytes]] = []
    for i, customer in enumerate(customers):
        confirmation = sink.wait_for(customer)[0].message
        number = int(TAG.search(str(confirmation["Subject"])).group(1))  # type: ignore[union-attr]
        jobs += [(0, customer, _reply(customer, number, f"Larm {i}", confirmation["Message-ID"], originals[customer], n))
                 for n in range(REPLIES)]
    random.shuffle(jobs)
    _in_parallel([first, second], [(n, sender, raw) for n, (_, sender, raw) in enumerate(jobs)])
    total = TICKETS * (REPLIES + 1)
    wait_until(lambda: db.scalar("SELECT count(*) FROM inbound WHERE state != 'queued'") == total, timeout=180,
               what="every reply handled")
    quarantined = db.rows("SELECT q.reason FROM quarantine q")
    assert not quarantined, f"{len(quarantined)} quarantined, e.g. {quarantined[0][0][:300]}"
    on_ticket = Counter(row[0] for row in db.rows(
        "SELECT c.email FROM message m JOIN ticket t ON t.id = m.ticket_id JOIN customer c ON c.id = t.customer_id "
        "WHERE m.direction = 'in'"))
    assert db.scalar("SELECT count(*) FROM ticket") == TICKETS
    assert {c: on_ticket[c] for c in customers} == {c: REPLIES + 1 for c in customers}
    retried = sum(d.log_path.read_text(errors="replace").count("transient failure") for d in (first, second))
    print(f"\n{total} messages, 0 quarantined; {retried} transient failure(s) retried")


def _race(first: Daemon, second: Daemon, senders: list[tuple[int, str]], failures: list[str]) -> None:
    """Parent to one daemon, and at its 250 the follow-up to the other: an MX pair's race."""
    for index, sender in senders:
        parent_id = f"<parent-{uuid.uuid4().hex}@kund.example>"
        parent = make_mail(sender=sender, subject="Dörren går inte att låsa", message_id=parent_id)
        follow = make_mail(sender=sender, subject="Re: Dörren går inte att låsa", body="Also the back door.\n",
                           headers={"In-Reply-To": parent_id, "References": parent_id, "User-Agent": "Outlook"})
        try:
            (first if index % 2 else second).send(parent, sender=sender)
            (second if index % 2 else first).send(follow, sender=sender)
        except (smtplib.SMTPException, OSError) as exc:
            failures.append(f"{sender}: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_follow_up_at_the_other_daemon_right_after_its_parent_threads(pair: tuple[Daemon, Daemon, Sink]) -> None:
    first, second, _sink = pair
    db = first.db
    senders = [(i, f"race-{i}-{uuid.uuid4().hex[:6]}@kund.example") for i in range(RACES)]
    failures: list[str] = []
    threads = [threading.Thread(target=_race, args=(first, second, senders[i::4], failures)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[:5]
    wait_until(lambda: db.scalar("SELECT count(*) FROM inbound WHERE state != 'queued'") == 2 * RACES, timeout=120,
               what="every parent and follow-up handled")
    tickets = Counter(row[0] for row in db.rows("SELECT c.email FROM ticket t JOIN customer c ON c.id = t.customer_id"))
    misthreaded = [sender for _, sender in senders if tickets[sender] != 1]
    assert not misthreaded, f"{len(misthreaded)} of {RACES} follow-ups opened a ticket of their own"
    assert db.scalar("SELECT count(*) FROM quarantine") == 0
