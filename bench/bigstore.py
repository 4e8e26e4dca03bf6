"""Ingest rate with a big store next to a small one: new mail and replies to stored tickets.

    python bench/bigstore.py [--tickets 1000,1000000] [--messages 2000] [--processes 2]
                             [--db sqlite|postgresql] [--set POSTDESK_X=Y]

For each stored-ticket count, a scratch store is migrated by Postdesk's own migrations and then
seeded with bulk SQLAlchemy Core inserts straight into the tables: customers (five tickets
each), tickets numbered as the daemon numbers them, the customer as participant, the inbound
row, the customer's message and our confirmation with Message-IDs shaped like real ones
(scattered hex, so lookups walk a big index rather than its right edge), the sent outbox row,
and the events. Most tickets are closed history; the newest are an open backlog.

A daemon on that store is then driven by the load generator of bench/ingest.py (client
processes, persistent connections, as fast as it accepts): half the mail from new customers,
half replies by stored customers to open tickets, tagged `[#number]` and with In-Reply-To and
References naming the stored Message-IDs. Printed per store: seeding time, accepted/s and 250
latency, processed/s (first received until the last processed, from the store's own
timestamps), replies that threaded, daemon CPU per message and peak RSS; then each rate as a
ratio to the first (smallest) store. Issue 15 asks for 1,000,000 within 10 % of 1,000.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import Connection, Engine, Table, func, select, text  # noqa: E402

from bench import ingest  # noqa: E402
from bench.scale import DAEMON_ENV  # noqa: E402
from gateway.db.engine import make_engine, upgrade  # noqa: E402
from gateway.db.tables import CUSTOMER, EVENT, INBOUND, MESSAGE, OUTBOX, PARTICIPANT, TICKET  # noqa: E402
from tests.harness import Daemon, Database, Sink, make_mail  # noqa: E402

if TYPE_CHECKING:
    import psycopg

BATCH = 20_000
# config/postdesk.yaml's tickets.first_number: the daemon numbers ticket id n first_number + n - 1.
FIRST_NUMBER = 100_000
TICKETS_PER_CUSTOMER = 5
OPEN_BACKLOG = 2_000
MAILBOX = "support@telenta.example"
SEEDED = (CUSTOMER, TICKET, PARTICIPANT, INBOUND, MESSAGE, OUTBOX, EVENT)  # parents first
# An odd 128-bit constant: i * K mod 2**128 visits every value once and scatters neighbours.
_K = 0x9E3779B97F4A7C15F39CC0605CEDC835
RAW_IN = (b"From: %s\r\nTo: support@telenta.example\r\nSubject: Alarm fault %d\r\nMessage-ID: %s\r\n\r\n"
          + b"The panel shows fault 42 again.\r\n" * 6)
RAW_OUT = (b"From: support@telenta.example\r\nTo: %s\r\nSubject: [#%d] Alarm fault %d\r\nMessage-ID: %s\r\n"
           b"Auto-Submitted: auto-replied\r\n\r\n" + b"We have registered your request.\r\n" * 8)


def scattered(i: int, salt: int) -> str:
    return f"{((i * 4 + salt) * _K) % (1 << 128):032x}"


def customer_email(i: int) -> str:
    """The address of the customer of ticket index `i`."""
    c = i // TICKETS_PER_CUSTOMER
    return f"customer{c}@kund{c % 997}.example"


def in_id(i: int) -> str:
    return f"<{scattered(i, 1)}@kund{(i // TICKETS_PER_CUSTOMER) % 997}.example>"


def out_id(i: int) -> str:
    return f"<{scattered(i, 2)}@postdesk.telenta.example>"


def open_from(total: int) -> int:
    """Tickets from this index on are the open backlog; those before it are closed history."""
    return total - min(OPEN_BACKLOG, total // 2)


def _ticket(i: int, open_: bool, created: datetime) -> dict[str, Any]:
    return {"id": i + 1, "number": FIRST_NUMBER + i, "subject": f"Alarm fault {i}",
            "status": "new" if open_ else "closed", "customer_id": i // TICKETS_PER_CUSTOMER + 1,
            "mailbox": MAILBOX, "department": "kundtjanst", "priority": "normal", "tags": "", "fields": "{}",
            "missing_fields": "", "created_at": created, "updated_at": created + timedelta(minutes=30),
            "closed_at": None if open_ else created + timedelta(days=2)}


def _messages(i: int, created: datetime) -> list[dict[str, Any]]:
    common = {"ticket_id": i + 1, "subject": f"Alarm fault {i}", "thread_by": "", "visibility": "public",
              "html": "", "body": "", "mailbox": MAILBOX, "trace": "{}"}
    return [
        {**common, "direction": "in", "kind": "customer", "author": customer_email(i), "message_id": in_id(i),
         "body_hash": scattered(i, 3) * 2, "text": "The panel shows fault 42 again.\n", "inbound_id": i + 1,
         "created_at": created, "thread_root": ""},
        {**common, "direction": "out", "kind": "confirmation", "author": "", "message_id": out_id(i),
         "body_hash": scattered(i, 0) * 2, "text": "We have registered your request.\n", "inbound_id": None,
         "created_at": created, "thread_root": "01" + scattered(i, 3)[:42]},
    ]


def _mail_rows(i: int, created: datetime) -> dict[Table, dict[str, Any]]:
    """The inbound row it came as and the outbox row of its confirmation."""
    email = customer_email(i).encode()
    raw_in = RAW_IN % (email, i, in_id(i).encode())
    raw_out = RAW_OUT % (email, FIRST_NUMBER + i, i, out_id(i).encode())
    return {
        INBOUND: {"id": i + 1, "received_at": created, "source": "smtp", "mail_from": customer_email(i),
                  "rcpt_to": MAILBOX, "raw": raw_in, "size": len(raw_in), "state": "done", "claim": None,
                  "processed_at": created, "note": "created", "message_id": in_id(i)},
        OUTBOX: {"created_at": created, "ticket_id": i + 1, "kind": "confirmation", "mail_from": MAILBOX,
                 "rcpt_to": customer_email(i), "message_id": out_id(i), "raw": raw_out, "state": "sent",
                 "attempts": 1, "next_attempt_at": created, "last_error": "", "sent_at": created},
    }


def chunk(start: int, end: int, total: int, now: datetime) -> dict[Table, list[dict[str, Any]]]:
    """Rows of ticket indexes start..end-1 of a store of `total` tickets, by table, parents first."""
    rows: dict[Table, list[dict[str, Any]]] = {table: [] for table in SEEDED}
    first_open = open_from(total)
    for i in range(start, end):
        if i % TICKETS_PER_CUSTOMER == 0:
            rows[CUSTOMER].append({"id": i // TICKETS_PER_CUSTOMER + 1, "email": customer_email(i),
                                   "name": f"Customer {i // TICKETS_PER_CUSTOMER}", "notifications_off": False,
                                   "created_at": now - timedelta(days=800)})
        open_ = i >= first_open
        # History spread over two years before the backlog; the backlog within the last day.
        created = now - (timedelta(seconds=(total - i) * 43 % 86_400) if open_
                         else timedelta(days=3, seconds=(first_open - i) * 6_311 % (86_400 * 700)))
        rows[TICKET].append(_ticket(i, open_, created))
        rows[PARTICIPANT].append({"ticket_id": i + 1, "email": customer_email(i), "role": "customer"})
        rows[MESSAGE] += _messages(i, created)
        for table, row in _mail_rows(i, created).items():
            rows[table].append(row)
        rows[EVENT].append({"ticket_id": i + 1, "at": created, "kind": "created", "status": "new", "actor": "",
                            "detail": ""})
        if not open_:
            rows[EVENT].append({"ticket_id": i + 1, "at": created + timedelta(days=2), "kind": "status",
                                "status": "closed", "actor": "agent@telenta.example", "detail": ""})
    return rows


def _columns(table: Table, row: dict[str, Any]) -> tuple[list[str], tuple[Any, ...]]:
    """The row's own columns, then those of `table` it leaves out that have a scalar default, and
    those defaults: what the model would have filled in."""
    rest = [column for column in table.columns
            if column.name not in row and column.default is not None and column.default.is_scalar]
    return [*row, *(column.name for column in rest)], tuple(getattr(column.default, "arg", None) for column in rest)


def _sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite DateTime text of a UTC time, as sqlmodel's UTCDateTime stores it
    (`seed` keeps the microseconds non-zero, so isoformat always writes them)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def _write(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One multi-row write of `rows` below SQLAlchemy's per-value bind step (COPY on PostgreSQL,
    executemany on SQLite): the rows are ours and already fit the columns, and the bind step
    costs more than the database does. Values are stored as the models' types store them."""
    names, tail = _columns(table, rows[0])
    own = itemgetter(*rows[0])
    values = [own(row) + tail for row in rows]
    raw = conn.connection.dbapi_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        with cast("psycopg.Connection[Any]", raw).cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        return
    marks = ", ".join("?" * len(names))
    raw.cursor().executemany(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", values)


def _fast(conn: Connection) -> None:
    """Settings of the seeding connection alone (the daemon's own are untouched): no foreign-key
    checks (the rows are consistent by construction), a cache that holds the big indexes and
    no flush to disk at each commit (a scratch store; the daemon writes with its own settings)."""
    if conn.dialect.name == "sqlite":
        # This process's SQLAlchemy statements bind text already; only `_write`'s raw rows meet it.
        sqlite3.register_adapter(datetime, _sqlite_time)
        # Outside the transaction: pysqlite begins one only at the first INSERT.
        for pragma in ("foreign_keys=OFF", "cache_size=-1000000", "synchronous=OFF"):
            conn.exec_driver_sql(f"PRAGMA {pragma}")
    else:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no FK triggers


_SQLITE_INDEXES = "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({})"
# Secondary indexes only: those behind a primary key or UNIQUE constraint stay (they cannot be dropped alone).
_PG_INDEXES = ("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN ({}) AND NOT EXISTS "
               "(SELECT 1 FROM pg_constraint WHERE conname = indexname)")
_INDEX_NAME = re.compile(r"INDEX (\S+) ON")


def indexes_dropped(engine: Engine) -> list[str]:
    """Drop the migration's secondary indexes of the seeded tables; their CREATE statements.

    Built once over the loaded rows (a sort) they cost a fraction of keeping them up to date row
    by row; `indexes_restored` runs the very statements the migration left, so the store ends
    with the same schema."""
    tables = ", ".join(f"'{table.name}'" for table in SEEDED)
    query = (_SQLITE_INDEXES if engine.dialect.name == "sqlite" else _PG_INDEXES).format(tables)
    with engine.begin() as conn:
        ddl = [row[0] for row in conn.exec_driver_sql(query)]
        for statement in ddl:
            found = _INDEX_NAME.search(statement)
            assert found is not None, statement
            conn.exec_driver_sql(f"DROP INDEX {found.group(1)}")
    return ddl


def indexes_restored(engine: Engine, ddl: list[str]) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        else:
            conn.exec_driver_sql("PRAGMA cache_size=-1000000")
        for statement in ddl:
            conn.exec_driver_sql(statement)


def seed(engine: Engine, tickets: int, progress: bool = True) -> float:
    """Bulk-insert `tickets` tickets with their rows, one transaction per chunk; the seconds it took.

    `engine`: a plain one (the harness's `Database.engine`), not the daemon's `make_engine`."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=123_456)
    ddl = indexes_dropped(engine)
    for start in range(0, tickets, BATCH):
        rows = chunk(start, min(start + BATCH, tickets), tickets, now)
        with engine.begin() as conn:
            _fast(conn)
            for table, batch in rows.items():
                if batch:
                    _write(conn, table, batch)
        if progress and start and start % (10 * BATCH) == 0:
            print(f"  seeded {start:,} tickets in {time.perf_counter() - started:.0f} s", flush=True)
    indexes_restored(engine, ddl)
    if engine.dialect.name == "postgresql" and tickets:
        # Explicit ids leave PostgreSQL's sequences behind; the daemon's rows would collide.
        with engine.begin() as conn:
            for table in SEEDED:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                  f"(SELECT max(id) FROM {table.name}))"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def load(total: int, stored: int, seed_value: int = 15) -> list[tuple[str, bytes]]:
    """`total` mails (sender, raw), alternating a new customer's and a reply to an open stored ticket."""
    backlog = list(range(open_from(stored), stored))
    random.Random(seed_value).shuffle(backlog)
    mail = []
    for k in range(total):
        if k % 2 == 0 or not backlog:
            sender = f"big-{uuid.uuid4().hex[:10]}@kund.example"
            mail.append((sender, make_mail(sender=sender, subject=f"Bench message {k}", body="Larmet tjuter.\n" * 20)))
            continue
        i = backlog[(k // 2) % len(backlog)]
        headers = {"In-Reply-To": out_id(i), "References": f"{in_id(i)} {out_id(i)}"}
        mail.append((customer_email(i), make_mail(
            sender=customer_email(i), subject=f"Re: [#{FIRST_NUMBER + i}] Alarm fault {i}",
            body="Thanks. It rang again this morning.\n" * 10, headers=headers)))
    return mail


def drive(port: int, mail: list[tuple[str, bytes]], processes: int) -> list[tuple[str, float, float]]:
    """bench/ingest.py's load generator on these mails: its client processes and connections."""
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=ingest._client, args=(port, mail[i::processes], out)) for i in range(processes)]
    for proc in procs:
        proc.start()
    results = [item for _ in procs for item in out.get()]
    for proc in procs:
        proc.join()
    return results


@dataclass
class Run:
    kind: str
    stored: int
    seed_seconds: float
    accepted: float
    p50: float
    p99: float
    processed: float
    threaded: str
    cpu_ms: float
    rss_mb: float


def processed_rate(db: Database, stored: int, total: int, timeout: float = 900) -> tuple[float, int]:
    """Messages per second from the first received to the last processed, and how many ended in quarantine."""
    new = select(func.count()).select_from(INBOUND).where(INBOUND.c.id > stored, INBOUND.c.state != "queued")
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while conn.execute(new).scalar_one() < total and time.monotonic() < deadline:
            conn.rollback()
            time.sleep(0.25)
        done = (INBOUND.c.id > stored) & INBOUND.c.processed_at.is_not(None)
        span = conn.execute(select(func.min(INBOUND.c.received_at), func.max(INBOUND.c.processed_at),
                                   func.count()).where(done)).one()
        quarantined = conn.execute(select(func.count()).select_from(INBOUND).where(
            INBOUND.c.id > stored, INBOUND.c.state == "quarantined")).scalar_one()
    return span[2] / max((span[1] - span[0]).total_seconds(), 1e-6), quarantined


def threaded(db: Database, stored: int, replies: int) -> str:
    """Replies that landed on their stored ticket, of those sent."""
    with db.engine.connect() as conn:
        found = conn.execute(select(func.count()).select_from(MESSAGE).where(
            MESSAGE.c.ticket_id <= stored, MESSAGE.c.direction == "in", MESSAGE.c.inbound_id > stored)).scalar_one()
    return f"{found}/{replies}"


def measure(kind: str, stored: int, args: argparse.Namespace) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(kind, Path(folder))
        engine = make_engine(db.url)
        upgrade(engine)
        engine.dispose()
        print(f"{kind}: seeding {stored:,} tickets", flush=True)
        seconds = seed(db.engine, stored)
        sink = Sink().start()
        env = {**DAEMON_ENV, **dict(item.split("=", 1) for item in args.set)}
        daemon = Daemon(db, sink, Path(folder) / "daemon.log", env_extra=env).start(timeout=300)
        try:
            assert daemon.proc is not None
            mail = load(args.messages, stored)
            cpu_before = ingest.cpu_seconds(daemon.proc.pid)
            results = drive(daemon.port, mail, args.processes)
            accepted = ingest.summarise(f"postdesk ({kind}, {stored:,} stored)", results)
            rate, quarantined = processed_rate(db, stored, len(mail))
            cpu_ms = (ingest.cpu_seconds(daemon.proc.pid) - cpu_before) / len(mail) * 1000
            latencies = [(r[2] - r[1]) * 1000 for r in results]
            print(f"{'':<34} {rate:8.0f} msg/s processed; seeding took {seconds:.0f} s; {quarantined} quarantined",
                  flush=True)
            return Run(kind, stored, seconds, accepted, ingest.percentile(latencies, .5),
                       ingest.percentile(latencies, .99), rate, threaded(db, stored, len(mail) // 2), cpu_ms,
                       ingest.peak_rss_mb(daemon.proc.pid))
        finally:
            daemon.stop()
            sink.stop()
            db.drop()


def report(runs: list[Run]) -> None:
    print(f"\n{'db':<11} {'stored':>10} {'seed s':>7} {'accepted/s':>11} {'250 p50':>8} {'250 p99':>8} "
          f"{'processed/s':>12} {'threaded':>10} {'CPU/msg':>8} {'peak RSS':>9}")
    for run in runs:
        print(f"{run.kind:<11} {run.stored:>10,} {run.seed_seconds:>7.1f} {run.accepted:>11.0f} {run.p50:>6.1f}ms "
              f"{run.p99:>6.1f}ms {run.processed:>12.0f} {run.threaded:>10} {run.cpu_ms:>6.2f}ms "
              f"{run.rss_mb:>6.0f} MB")
    for kind in dict.fromkeys(run.kind for run in runs):
        mine = [run for run in runs if run.kind == kind]
        for run in mine[1:]:
            print(f"{kind}: {run.stored:,} against {mine[0].stored:,} stored: "
                  f"accepted x{run.accepted / mine[0].accepted:.2f}, "
                  f"processed x{run.processed / mine[0].processed:.2f} (issue 15: within 10 %, x0.90 or more)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", default="1000,1000000",
                        help="stored-ticket counts, comma-separated; the first is the baseline (default: %(default)s)")
    parser.add_argument("--messages", type=int, default=2000,
                        help="mails per store, half of them replies (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=2,
                        help=f"client processes, {ingest.THREADS_PER_PROCESS} connections each (default: %(default)s)")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append",
                        help="store kind; repeat for both (default: sqlite)")
    parser.add_argument("--set", action="append", default=[], metavar="POSTDESK_X=Y",
                        help="extra daemon setting, e.g. POSTDESK_PROCESSOR__BATCH_SIZE=16")
    parser.add_argument("--seed-only", action="store_true", help="time the seeding alone, measure nothing")
    args = parser.parse_args()
    counts = [int(part.replace("_", "")) for part in args.tickets.split(",") if part.strip()]
    if args.seed_only:
        seed_only(args.db or ["sqlite"], counts)
    else:
        report([measure(kind, count, args) for kind in args.db or ["sqlite"] for count in counts])


def seed_only(kinds: list[str], counts: list[int]) -> None:
    for kind in kinds:
        for count in counts:
            with tempfile.TemporaryDirectory() as folder:
                db = Database(kind, Path(folder))
                engine = make_engine(db.url)
                upgrade(engine)
                engine.dispose()
                seconds = seed(db.engine, count)
                db.drop()
                print(f"{kind}: seeded {count:,} tickets in {seconds:.1f} s ({count / seconds:,.0f} tickets/s)")


if __name__ == "__main__":
    main()
