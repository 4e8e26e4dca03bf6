"""Does Postdesk slow down as the store grows? Intake and end-to-end rate with 0, 1,000 and
1,000,000 tickets already stored, resident memory under sustained load, SQLite versus PostgreSQL.

    python bench/scale.py [--tickets 1000,1000000] [--messages 2000] [--db sqlite --db postgresql]
                          [--memory-seconds 60]

For each database kind: a bare aiosmtpd sink is measured first (the baseline of this run, from
bench/ingest.py), then a daemon on an empty store, then on stores bulk-filled through SQLAlchemy
Core (customers, tickets, their messages, inbound and outbox rows and events, in batches of
20,000 tickets), each driven by the same load generator as bench/ingest.py. The drop is
relative to the empty store of the same kind. Last, the daemon runs under load for
`--memory-seconds` while its VmRSS is sampled every second. Prints figures; asserts nothing.

End to end is bench/ingest.py's: every message's confirmation received by the relay sink,
matched to its mail by the mail's Message-ID (bench/latency.py's sink), from the first message
sent until the last confirmation arrived; the staff notices are counted apart.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, insert, text  # noqa: E402

from bench import ingest, latency  # noqa: E402
from gateway.db.engine import make_engine, upgrade  # noqa: E402
from gateway.db.models import Customer, Inbound, Message, Outbox, Ticket, TicketEvent  # noqa: E402
from tests.harness import Daemon, Database  # noqa: E402

BATCH = 20_000
FIRST_NUMBER = 100_000
TICKETS_PER_CUSTOMER = 5
# Most stored tickets are history; an open backlog of this size is what the SLA sweeps and
# reminders walk every minute.
OPEN_BACKLOG = 2_000
DAEMON_ENV = {
    "POSTDESK_LOGGING__LEVEL": "WARNING",
    # Off: their ports would clash between runs; neither is on the path of a message.
    "POSTDESK_WEB__ENABLED": "false",
    "POSTDESK_METRICS__LISTEN": "",
}
RAW_IN = (b"From: c@kund.example\r\nTo: support@telenta.example\r\nSubject: Alarm fault\r\n"
          b"Message-ID: <%d.in@kund.example>\r\n\r\n" + b"The panel shows fault 42 again.\r\n" * 6)
RAW_OUT = (b"From: support@telenta.example\r\nTo: c@kund.example\r\nSubject: [#%d] Alarm fault\r\n"
           b"Auto-Submitted: auto-replied\r\n\r\n" + b"We have registered your request.\r\n" * 8)


def table(model: Any) -> Any:
    return model.__table__


def _chunk(start: int, end: int, total: int, now: datetime) -> dict[Any, list[dict[str, Any]]]:
    """Rows for tickets start..end-1 (ids from 1) of `total`: what a store holds for them."""
    history = end_of_history(total)
    rows: dict[Any, list[dict[str, Any]]] = {model: [] for model in (Customer, Inbound, Ticket, Message, Outbox, TicketEvent)}
    for i in range(start, end):
        tid = i + 1
        if i % TICKETS_PER_CUSTOMER == 0:
            rows[Customer].append({"id": i // TICKETS_PER_CUSTOMER + 1, "email": f"c{i // TICKETS_PER_CUSTOMER}@kund{i % 997}.example",
                                   "name": f"Customer {i}", "notifications_off": False, "created_at": now})
        open_ = i >= history
        created = now - (timedelta(hours=i % 24) if open_ else timedelta(minutes=i % (60 * 24 * 700) + 60 * 24 * 3))
        cid = i // TICKETS_PER_CUSTOMER + 1
        rows[Ticket].append({
            "id": tid, "number": FIRST_NUMBER + i, "subject": f"Alarm fault {i}", "status": "new" if open_ else "closed",
            "customer_id": cid, "mailbox": "support@telenta.example", "priority": "normal", "tags": "", "fields": "{}",
            "missing_fields": "", "created_at": created, "updated_at": created + timedelta(minutes=30),
            "closed_at": None if open_ else created + timedelta(days=2),
        })
        rows[Inbound].append({"id": tid, "received_at": created, "source": "smtp", "mail_from": "c@kund.example",
                              "rcpt_to": "support@telenta.example", "raw": RAW_IN % i, "size": len(RAW_IN),
                              "state": "done", "claim": "fill/0", "processed_at": created, "note": "created"})
        common = {"ticket_id": tid, "subject": f"Alarm fault {i}", "body_hash": f"{i:064x}", "thread_by": "",
                  "visibility": "public", "html": "", "body": "", "mailbox": "support@telenta.example", "trace": "{}"}
        rows[Message] += [
            {**common, "direction": "in", "kind": "customer", "author": "c@kund.example", "message_id": f"<{i}.in@kund.example>",
             "text": "The panel shows fault 42 again.\n", "inbound_id": tid, "created_at": created},
            {**common, "direction": "out", "kind": "confirmation", "author": "", "message_id": f"<{i}.out@postdesk.telenta.example>",
             "text": "We have registered your request.\n", "inbound_id": None, "created_at": created},
        ]
        rows[Outbox].append({"created_at": created, "ticket_id": tid, "kind": "confirmation", "mail_from": "support@telenta.example",
                             "rcpt_to": "c@kund.example", "message_id": f"<{i}.out@postdesk.telenta.example>",
                             "raw": RAW_OUT % (FIRST_NUMBER + i), "state": "sent", "attempts": 1, "next_attempt_at": created,
                             "last_error": "", "sent_at": created})
        rows[TicketEvent].append({"ticket_id": tid, "at": created, "kind": "created", "status": "new", "actor": "", "detail": ""})
        if not open_:
            rows[TicketEvent].append({"ticket_id": tid, "at": created + timedelta(days=2), "kind": "status",
                                      "status": "closed", "actor": "agent@telenta.example", "detail": ""})
    return rows


def end_of_history(total: int) -> int:
    """Tickets from this index on are the open backlog; the ones before are closed history."""
    return total - min(OPEN_BACKLOG, total // 10)


def fill(engine: Engine, tickets: int) -> float:
    """Bulk-insert `tickets` tickets with their rows; returns the seconds it took."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    for start in range(0, tickets, BATCH):
        rows = _chunk(start, min(start + BATCH, tickets), tickets, now)
        with engine.begin() as conn:
            for model, batch in rows.items():
                if batch:
                    conn.execute(insert(table(model)), batch)
    if engine.dialect.name == "postgresql" and tickets:
        # Explicit ids do not move PostgreSQL's sequences; new rows would collide without this.
        with engine.begin() as conn:
            for name in ("customer", "ticket", "inbound", "message", "outbox", "ticketevent"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


@dataclass
class Run:
    stored: int
    fill_seconds: float
    accepted: float
    end_to_end: float
    peak_rss_mb: float
    confirmed: int
    messages: int


@dataclass
class Store:
    db: Database
    sink: latency.Stamping
    daemon: Daemon


def started(kind: str, tmp: Path, tickets: int) -> tuple[Store, float]:
    db = Database(kind, tmp)
    engine = make_engine(db.url)
    upgrade(engine)
    seconds = fill(engine, tickets)
    engine.dispose()
    sink = latency.Stamping()
    sink.start()
    daemon = Daemon(db, sink, tmp / f"daemon-{kind}-{tickets}.log", env_extra=DAEMON_ENV).start(timeout=120)
    return Store(db, sink, daemon), seconds


def stopped(store: Store) -> None:
    store.daemon.stop()
    store.sink.stop()
    store.db.drop()


def run_through(store: Store, messages: int, processes: int) -> ingest.EndToEnd:
    """bench/ingest.py's end-to-end run on this store's daemon."""
    return ingest.end_to_end([store.daemon.port], ingest.pids_of([store.daemon]), store.sink, messages, processes)


def measure(kind: str, tickets: int, messages: int, processes: int, base: float) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        store, seconds = started(kind, Path(folder), tickets)
        try:
            run = run_through(store, messages, processes)
            accepted = ingest.show(f"postdesk ({kind}, {tickets:,} stored)", run, base)
            print(f"{'':<34} fill {seconds:.0f} s; load average {ingest.load_average()}", flush=True)
            return Run(tickets, seconds, accepted, run.rate, run.peak_rss_mb, run.confirmed, messages)
        finally:
            stopped(store)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample(pid: int, stop: threading.Event, readings: list[float]) -> None:
    """VmRSS of `pid` once a second until `stop` is set."""
    while not stop.wait(1.0):
        readings.append(rss_mb(pid))


def memory(kind: str, seconds: float, rate: float, processes: int) -> tuple[float, float, float, int]:
    """Drive about `seconds` of load at the measured rate; VmRSS at start, peak and end."""
    with tempfile.TemporaryDirectory() as folder:
        store, _ = started(kind, Path(folder), 0)
        try:
            assert store.daemon.proc is not None
            pid = store.daemon.proc.pid
            start = rss_mb(pid)
            stop = threading.Event()
            readings: list[float] = []
            sampler = threading.Thread(target=sample, args=(pid, stop, readings), daemon=True)
            sampler.start()
            total = max(1000, int(rate * seconds))
            run_through(store, total, processes)
            stop.set()
            sampler.join()
            end = rss_mb(pid)
            return start, max([start, *readings, end]), end, total
        finally:
            stopped(store)


def machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    with open("/proc/meminfo") as info:
        mem_kb = int(info.readline().split()[1])
    return f"{cores} cores, {mem_kb / 1024 / 1024:.0f} GiB, Python {platform.python_version()}, {platform.platform()}"


def report(base: float, table_rows: list[tuple[str, Run, Run]]) -> None:
    """The table: each run next to the empty store of its kind and to the bare sink."""
    print(f"\nbaseline (bare aiosmtpd sink): {base:.0f} msg/s accepted")
    print(f"{'db':<11} {'stored':>10} {'fill s':>7} {'accepted/s':>11} {'drop':>7} {'e2e/s':>7} {'drop':>7} "
          f"{'e2e/sink':>8} {'confirmed':>11} {'peak RSS':>9}")
    for kind, run, empty in table_rows:
        drop_in = (1 - run.accepted / empty.accepted) * 100
        drop_e2e = (1 - run.end_to_end / empty.end_to_end) * 100
        print(f"{kind:<11} {run.stored:>10,} {run.fill_seconds:>7.0f} {run.accepted:>11.0f} {drop_in:>6.1f}% "
              f"{run.end_to_end:>7.0f} {drop_e2e:>6.1f}% {run.end_to_end / base:>8.2f} "
              f"{run.confirmed:>5}/{run.messages:<5} {run.peak_rss_mb:>6.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", default="1000,1000000", help="stored-ticket counts besides 0, comma-separated")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--memory-seconds", type=float, default=60)
    args = parser.parse_args()
    counts = [0, *(int(part.replace("_", "")) for part in args.tickets.split(",") if part.strip())]
    kinds = args.db or ["sqlite", "postgresql"]
    print(f"{machine()}\n{args.messages} messages per run, {args.processes} client processes x "
          f"{ingest.THREADS_PER_PROCESS} persistent connections; load average {ingest.load_average()}", flush=True)
    base = ingest.baseline(args.messages, args.processes)
    table_rows: list[tuple[str, Run, Run]] = []
    memories: dict[str, tuple[float, float, float, int]] = {}
    for kind in kinds:
        runs = [measure(kind, count, args.messages, args.processes, base) for count in counts]
        table_rows += [(kind, run, runs[0]) for run in runs]
        if args.memory_seconds > 0:
            memories[kind] = memory(kind, args.memory_seconds, runs[0].end_to_end, args.processes)
    report(base, table_rows)
    for kind, (start, peak, end, total) in memories.items():
        print(f"memory under load ({kind}, {total} messages over ~{args.memory_seconds:.0f} s): "
              f"VmRSS start {start:.0f} MB, peak {peak:.0f} MB, end {end:.0f} MB")


if __name__ == "__main__":
    main()
