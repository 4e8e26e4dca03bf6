"""Backup and restore times (`gateway.backup`) for a store of N tickets, SQLite and PostgreSQL.

Fills a fresh database with N customers, tickets, inbound rows (a 4 KB raw message each) and
messages through bulk inserts, then times `write_backup` and `restore_backup` into an empty
database of the same kind. Baseline in the same run: SQLite's online backup API copying the
file (what the daily duty did before), and `pg_dump -Fc` where it is installed.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from gateway.backup import restore_backup, write_backup  # noqa: E402
from gateway.clock import utcnow  # noqa: E402
from gateway.config import Config, DatabaseConfig  # noqa: E402
from gateway.db.engine import make_engine, upgrade  # noqa: E402
from gateway.db.tables import CUSTOMER, INBOUND, MESSAGE, TICKET  # noqa: E402
from tests.harness import Database, pg_available  # noqa: E402

RAW = b"From: a@kund.example\r\nSubject: x\r\n\r\n" + b"Hej, larmet tjuter.\r\n" * 190


def fill(url: str, count: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    now = utcnow()
    with engine.begin() as conn:
        for start in range(0, count, 1000):
            ids = range(start + 1, min(start + 1000, count) + 1)
            conn.execute(insert(CUSTOMER), [{"id": i, "email": f"c{i}@kund.example", "name": f"C {i}",
                                             "notifications_off": False, "created_at": now} for i in ids])
            conn.execute(insert(TICKET), [{"id": i, "number": 100000 + i, "subject": f"Larm {i}", "status": "new",
                                           "customer_id": i, "mailbox": "support@telenta.example", "priority": "normal",
                                           "created_at": now, "updated_at": now} for i in ids])
            conn.execute(insert(INBOUND), [{"id": i, "received_at": now, "source": "smtp", "mail_from": "a@kund.example",
                                            "rcpt_to": "support@telenta.example", "raw": RAW, "size": len(RAW),
                                            "state": "done", "note": "created"} for i in ids])
            conn.execute(insert(MESSAGE), [{"id": i, "ticket_id": i, "direction": "in", "kind": "customer",
                                            "author": f"c{i}@kund.example", "message_id": f"<{i}@kund.example>",
                                            "subject": f"Larm {i}", "text": "Hej, larmet tjuter.", "inbound_id": i,
                                            "mailbox": "support@telenta.example", "created_at": now} for i in ids])
    engine.dispose()


def baseline(db: Database, folder: Path) -> tuple[str, float] | None:
    started = time.perf_counter()
    if db.kind == "sqlite":
        source = sqlite3.connect(db.url.removeprefix("sqlite:///"))
        copy = sqlite3.connect(folder / "copy.db")
        source.backup(copy)
        copy.close()
        source.close()
        return "sqlite3 online backup", time.perf_counter() - started
    if shutil.which("pg_dump") is None:
        return None
    subprocess.run(["pg_dump", "-Fc", "-f", str(folder / "dump"), db.url.replace("+psycopg", "")], check=True)
    return "pg_dump -Fc", time.perf_counter() - started


def run(kind: str, count: int, folder: Path) -> None:
    source, target = Database(kind, folder), Database(kind, folder)
    try:
        fill(source.url, count)
        config = Config(secret="bench", database=DatabaseConfig(url=target.url), store_dir=folder / "store")
        file = folder / f"{kind}.tar.gz"
        engine = make_engine(source.url)
        started = time.perf_counter()
        write_backup(config, engine, file, say=lambda _line: None)
        backed = time.perf_counter() - started
        engine.dispose()
        started = time.perf_counter()
        restore_backup(config, file, say=lambda _line: None)
        restored = time.perf_counter() - started
        base = baseline(source, folder)
        line = (f"{kind:<10} {count:>8,} tickets: backup {backed:6.1f} s, restore {restored:6.1f} s, "
                f"file {file.stat().st_size / 1e6:6.1f} MB")
        print(line + (f"; baseline {base[0]} {base[1]:.1f} s" if base else ""))
    finally:
        source.drop()
        target.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20000)
    args = parser.parse_args()
    kinds = ["sqlite"] + (["postgresql"] if pg_available() else [])
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            run(kind, args.tickets, Path(folder))


if __name__ == "__main__":
    main()
