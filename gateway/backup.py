"""Backups that restore everything: `postdesk backup now`, `postdesk restore FILE`, the daily duty.

A backup is one gzipped tar file, readable by the daemon's user only (mode 0600), holding:

- `manifest.json`: when, from which database kind, the schema revision, rows per table;
- `secret.key`: the signing secret. Every reply address, sign-in link, ticket link and rating
  link already mailed out is signed with it; a restore without it would leave all of them dead;
- `tables/<name>.jsonl`: every row of every table, one JSON object a line (bytes in base64,
  times in ISO 8601), in primary-key order.

Rows rather than a database file make one format for SQLite and PostgreSQL, and let a backup of
one be restored into the other. The copy is consistent: SQLite is first copied with its online
backup API, PostgreSQL is read in one REPEATABLE READ transaction. A restore goes only into an
empty database: it brings the schema to the backup's revision, inserts the rows, then upgrades
to this code's revision, so migrations written since carry the data forward.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, func, insert, inspect, select, text

from gateway.config import Config
from gateway.db.engine import current_revision, downgrade, head_revision, make_engine, upgrade

log = logging.getLogger("gateway.backup")
FORMAT = 1
# Alembic's own bookkeeping is rebuilt by the restore's upgrade, never copied.
SKIP_TABLES = {"alembic_version"}
BATCH = 500
Say = Callable[[str], None]


class RestoreError(Exception):
    """The backup cannot be restored here; the message says why and what to do."""


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a backup")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$b" in obj:
            return base64.b64decode(obj["$b"])
        if "$t" in obj:
            return datetime.fromisoformat(obj["$t"])
        if "$d" in obj:
            return date.fromisoformat(obj["$d"])
    return obj


def _tables(bind: Engine | Connection) -> list[Table]:
    """Every table of the database, parents before children (foreign keys)."""
    meta = MetaData()
    meta.reflect(bind=bind)
    return [t for t in meta.sorted_tables if t.name not in SKIP_TABLES]


def default_path(config: Config, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%SZ")
    return Path(config.store_dir) / "backups" / f"postdesk-{stamp}.tar.gz"


def _rows(conn: Connection, table: Table) -> Iterator[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(select(table).order_by(*order))
    for row in result.mappings():
        yield dict(row)


@contextmanager
def _snapshot(engine: Engine, folder: Path) -> Iterator[Connection]:
    """One connection that sees one moment of the database while the daemon goes on writing:
    SQLite's online backup copied into `folder`, or a REPEATABLE READ transaction on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        copy = folder / "snapshot.db"
        raw = engine.raw_connection()
        try:
            source = raw.driver_connection
            assert isinstance(source, sqlite3.Connection)
            target = sqlite3.connect(copy)
            source.backup(target)
            target.close()
        finally:
            raw.close()
        reader = create_engine(f"sqlite:///{copy}")
    else:
        reader = create_engine(engine.url, isolation_level="REPEATABLE READ", pool_size=1)
    try:
        with reader.connect() as conn, conn.begin():
            yield conn
    finally:
        reader.dispose()


def _dump(conn: Connection, folder: Path, say: Say) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in _tables(conn):
        counts[table.name] = 0
        with (folder / f"{table.name}.jsonl").open("w", encoding="utf-8") as out:
            for row in _rows(conn, table):
                out.write(json.dumps(row, default=_encode, ensure_ascii=False) + "\n")
                counts[table.name] += 1
        say(f"  {table.name}: {counts[table.name]} row(s)")
    return counts


def write_backup(config: Config, engine: Engine, target: Path, say: Say = log.info) -> dict[str, Any]:
    """Write the backup of `engine`'s database and the secret to `target` (mode 0600)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".backup-") as work:
        folder = Path(work)
        with _snapshot(engine, folder) as conn:
            counts = _dump(conn, folder, say)
            revision = MigrationContext.configure(conn).get_current_revision()
        manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "database": engine.dialect.name,
                    "revision": revision, "tables": counts}
        partial = target.with_name(target.name + ".partial")
        # Created 0600 before anything is written: the secret must never be readable by others.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
            _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
            _add_bytes(tar, "secret.key", config.secret_key())
            for name in counts:
                tar.add(folder / f"{name}.jsonl", arcname=f"tables/{name}.jsonl")
        os.replace(partial, target)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.extractfile("manifest.json")
    except KeyError:
        raise RestoreError("not a Postdesk backup: no manifest.json in it") from None
    assert member is not None
    manifest: dict[str, Any] = json.loads(member.read())
    if manifest.get("format") != FORMAT:
        raise RestoreError(f"backup format {manifest.get('format')} is not one this version reads ({FORMAT})")
    return manifest


def _occupied(engine: Engine) -> list[str]:
    """Tables of `engine` that already hold rows: a restore must not mix two histories."""
    names = set(inspect(engine).get_table_names()) - SKIP_TABLES
    with engine.connect() as conn:
        return [name for name in sorted(names) if conn.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first()]


def restore_backup(config: Config, source: Path, say: Say = log.info) -> dict[str, Any]:
    """Restore `source` into the configured (empty) database and the store's secret."""
    engine = make_engine(config.database.url, pool_size=1)
    try:
        with tarfile.open(source, mode="r:gz") as tar:
            manifest = read_manifest(tar)
            _check_target(engine, manifest)
            say(f"schema: to revision {manifest['revision']} (the backup's)")
            _schema_at(engine, manifest["revision"] or "head")
            tables = {t.name: t for t in _tables(engine)}
            for name in [n for n in tables if n in manifest["tables"]]:
                count = _load_table(engine, tables[name], tar)
                say(f"  {name}: {count} row(s)")
            say(f"schema: to revision {head_revision()} (this version's)")
            upgrade(engine)
            say(_restore_secret(config, _member(tar, "secret.key")))
    finally:
        engine.dispose()
    return manifest


def _check_target(engine: Engine, manifest: dict[str, Any]) -> None:
    from alembic.script import ScriptDirectory

    from gateway.db.engine import MIGRATIONS

    revision = manifest.get("revision")
    if revision and ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is None:  # pragma: no cover
        raise RestoreError(f"the backup is at schema revision {revision}, which this version does not know: "
                           "restore it with the version that made it")
    occupied = _occupied(engine)
    if occupied:
        raise RestoreError(f"the database is not empty ({', '.join(occupied[:5])} hold rows): restore only into "
                           "a new, empty database (create one and point database.url at it)")


def _schema_at(engine: Engine, revision: str) -> None:
    """The (empty) schema exactly at `revision`, up from nothing or down from a newer one."""
    current = current_revision(engine)
    if current is None or revision == "head":
        upgrade(engine, revision)
    elif current != revision:
        try:
            upgrade(engine, revision)
        except CommandError:
            downgrade(engine, revision)


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise RestoreError(f"the backup has no {name}")
    return member.read()


def _load_table(engine: Engine, table: Table, tar: tarfile.TarFile) -> int:
    stream = tar.extractfile(f"tables/{table.name}.jsonl")
    if stream is None:
        return 0
    known = set(table.columns.keys())
    count = 0
    with engine.begin() as conn:
        batch: list[dict[str, Any]] = []
        for line in io.TextIOWrapper(stream, encoding="utf-8"):
            row = json.loads(line, object_hook=_decode)
            batch.append({k: v for k, v in row.items() if k in known})
            if len(batch) >= BATCH:
                conn.execute(insert(table), batch)
                count, batch = count + len(batch), []
        if batch:
            conn.execute(insert(table), batch)
            count += len(batch)
        _advance_sequence(conn, table)
    return count


def _advance_sequence(conn: Any, table: Table) -> None:
    """PostgreSQL's id sequences do not follow inserted ids: move them past the restored rows."""
    if conn.dialect.name != "postgresql" or "id" not in table.columns:
        return
    highest = conn.execute(select(func.max(table.c.id))).scalar()
    sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar()
    if highest is not None and sequence:
        conn.execute(text("SELECT setval(CAST(:s AS regclass), :v)"), {"s": sequence, "v": highest})


def _restore_secret(config: Config, secret: bytes) -> str:
    """Put the backup's signing secret where this installation reads it."""
    if config.secret:
        if config.secret.encode() == secret:
            return "secret: the configured `secret` is the backup's; old links keep working"
        return ("WARNING: the configured `secret` differs from the backup's: links mailed before the backup are "
                "dead until `secret` is set to the value of secret.key in the backup (or unset, after restoring "
                "store/secret.key)")
    path = Path(config.store_dir).resolve() / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = ""
    if path.exists() and path.read_bytes().strip() != secret.strip():
        previous = path.with_name("secret.key.before-restore")
        os.replace(path, previous)
        kept = f" (the one it replaces is kept as {previous})"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return f"secret: written to {path} (mode 0600){kept}; old links keep working"


def prune(folder: Path, keep_days: int, today: date) -> list[Path]:
    """Remove daily backups older than `keep_days` (by the date in their names)."""
    removed = []
    for old in [*folder.glob("postdesk-*.tar.gz"), *folder.glob("postdesk-*.db")]:
        stamp = old.name.removeprefix("postdesk-")[:10]
        try:
            day = datetime.strptime(stamp, "%Y-%m-%d").date()
        except ValueError:
            continue
        if (today - day).days > keep_days:
            old.unlink()
            removed.append(old)
    return removed
