"""Database engines and schema upgrades: SQLite (WAL) by default, PostgreSQL for scale-out.

The same SQLAlchemy code runs on both; what differs lives here: SQLite's pragmas and its single
writer, PostgreSQL's advisory lock around schema upgrades so that two daemons starting at once do
not race each other through the migrations.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    # Alembic is imported where the schema is read or changed: it costs a verb ~0.1 s to load.
    from alembic.config import Config as AlembicConfig

log = logging.getLogger("gateway.db")
MIGRATIONS = Path(__file__).with_name("migrations")
# An arbitrary constant shared by every Postdesk instance: the key of the upgrade lock.
UPGRADE_LOCK_KEY = 0x706F7374


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; FULL sync makes a commit survive power loss,
    # which is what our SMTP 250 promises.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Create an engine for `url`, creating the SQLite file's folder when it is missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30, "factory": _QueuedConnection},
            pool_size=pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        _serialise_writers(engine, parsed.database)

        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
            dbapi_connection.isolation_level = None

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)



def sqlite_reader(url: str, *, timeout: float = 30) -> Engine:
    """A read-only engine on the same SQLite file that never takes the writers' lock.

    The daemon's engine opens every transaction with BEGIN IMMEDIATE under a process-wide lock
    (below), reads included, so page views and scrapes through it would queue behind intake.
    This one opens plain deferred transactions: in WAL mode readers neither block the writer nor
    wait for it, and each transaction reads one consistent snapshot.
    """
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Autocommit at the driver, so that our own BEGIN below decides where transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A deferred BEGIN takes a read snapshot at the first SELECT and never the write lock.
        conn.exec_driver_sql("BEGIN")

    return engine


def snapshot_engine(engine: Engine) -> Engine | None:
    """A read-only engine on `engine`'s SQLite file (`sqlite_reader`), for work done on a
    snapshot and written under the lock (`gateway.db.snapshot`); None for PostgreSQL, where
    writers do not queue, and for a memory database, which another engine cannot see."""
    database = engine.url.database
    if not is_sqlite(engine) or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return sqlite_reader(engine.url.render_as_string(hide_password=False))


class _Writer:
    """Write transactions on one SQLite file, one at a time, each handed over without sleeping.

    SQLite has one writer. Left to itself, a second writer gets SQLITE_BUSY and its busy handler
    sleeps with growing pauses (up to 100 ms), which cut intake to a fifth under load. So the
    writers queue instead: this process's threads on a lock, and processes (the processor's own
    process, `postdesk inject`, a second daemon) on an exclusive `flock` of a file beside the
    database, which the kernel hands to the next waiter the moment it is released, and drops
    with the process that held it, however it ended. Re-entrant within a thread, so that a
    thread opening a second write transaction meets SQLite's busy timeout as before rather than
    waiting for itself. Programs that do not take the lock (the sqlite3 shell) still meet the
    busy timeout.
    """

    def __init__(self, database: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._fd = _lock_file(database)

    def acquire(self) -> None:
        self._lock.acquire()
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


class _QueuedConnection(sqlite3.Connection):
    """A pysqlite connection that leaves its file's writer queue (`_Writer`) only once its COMMIT
    or ROLLBACK has returned.

    SQLAlchemy's commit and rollback events fire before the driver's call. A queue left there
    let the next writer's BEGIN IMMEDIATE meet a COMMIT still writing: SQLite's busy handler
    then slept 1 to 3 ms, with the queue held, on half the hand-overs under load.
    """

    queued: _Writer | None = None

    def commit(self) -> None:
        self._ending(super().commit)

    def rollback(self) -> None:
        self._ending(super().rollback)

    def close(self) -> None:
        self._ending(super().close)

    def _ending(self, end: Callable[[], None]) -> None:
        try:
            end()
        finally:
            self.leave_queue()

    def leave_queue(self) -> None:
        writer, self.queued = self.queued, None
        if writer is not None:
            writer.release()


def _lock_file(database: str | None) -> int | None:
    """The open lock file beside `database` (None for none: a memory database, or none can be made)."""
    if database is None:
        return None
    try:
        return os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.warning("no writer lock beside %s (%s): other processes' writes meet the busy timeout", database, exc)
        return None


# One writer queue per database file and process, shared by every engine on that file.
_WRITERS: dict[str, _Writer] = {}
_WRITERS_LOCK = threading.Lock()


def _writer(database: str | None) -> _Writer:
    if not database or database == ":memory:":
        return _Writer(None)
    key = os.path.realpath(database)
    with _WRITERS_LOCK:
        if key not in _WRITERS:
            _WRITERS[key] = _Writer(key)
        return _WRITERS[key]


def _serialise_writers(engine: Engine, database: str | None) -> None:
    """Every transaction on this engine is a write transaction in the file's writer queue (`_Writer`).

    pysqlite's own transaction handling defers BEGIN, so we emit BEGIN IMMEDIATE ourselves: the
    write lock is taken up front, never half-way. The queue is left once the transaction has
    ended in the driver (`_QueuedConnection`).
    """
    writer = _writer(database)

    def begin(conn: Connection) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        assert isinstance(dbapi_connection, _QueuedConnection)
        writer.acquire()
        # Left by the driver's COMMIT or ROLLBACK (or closing), not by SQLAlchemy's events.
        dbapi_connection.queued = writer
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.leave_queue()
            raise

    def checked_in(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Back in the pool after a reset (a rollback): never still in the queue, whatever happened.
        if isinstance(dbapi_connection, _QueuedConnection):
            dbapi_connection.leave_queue()

    event.listen(engine, "begin", begin)
    event.listen(engine, "checkin", checked_in)


def _alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str | None:
    """This version's newest schema revision, read from the migration files without Alembic.

    Each file states `revision` and `down_revision` as literals; the head is the one revision no
    other names as its parent. Loading Alembic to walk the same files costs a verb ~0.2 s; when a
    file states them otherwise, or the files do not name exactly one head, Alembic is asked.
    """
    files = sorted((MIGRATIONS / "versions").glob("*.py"))
    parents: dict[str, set[str]] = {}
    for path in files:
        names = _literals(path.read_text(encoding="utf-8"), ("revision", "down_revision"))
        revision, down = names.get("revision"), names.get("down_revision")
        if isinstance(revision, str):
            # One parent, a merge's tuple of parents, or None for the first revision.
            parents[revision] = {down} if isinstance(down, str) else (
                {str(d) for d in down} if isinstance(down, tuple | list) else set())
    heads = set(parents) - set[str]().union(*parents.values())
    if len(parents) == len(files) and len(heads) == 1:
        return heads.pop()
    return alembic_head_revision()


def alembic_head_revision() -> str | None:
    """The head as Alembic walks the migration scripts (the fallback, and the tests' reference)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def _literals(source: str, names: tuple[str, ...]) -> dict[str, object]:
    """Module-level `name = <literal>` assignments in `source` (a name set otherwise is left out)."""
    import ast

    # Migration files state their revisions before the first function: parsing only that head
    # is a tenth of the work. A head that does not parse on its own is read whole.
    head = source.split("\ndef ", 1)[0]
    try:
        tree = ast.parse(head)
    except SyntaxError:
        tree = ast.parse(source)
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names:
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    return found


def revision_of(conn: Connection) -> str | None:
    """The revision the database's schema is at (None: no schema), read as Alembic records it."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table("alembic_version"):
        return None
    versions = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
    # More than one row: branches applied separately, never the head this version expects.
    return ",".join(sorted(versions)) or None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return revision_of(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest revision; safe to call from several daemons at once."""
    from alembic import command

    cfg = _alembic_config(engine)
    if is_sqlite(engine):
        command.upgrade(cfg, revision)
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
        try:
            command.upgrade(cfg, revision)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": UPGRADE_LOCK_KEY})
            conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` (a restore into an empty, newer schema needs this)."""
    from alembic import command

    command.downgrade(_alembic_config(engine), revision)
