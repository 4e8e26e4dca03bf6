"""Processes writing one SQLite file queue for it in the kernel (gateway.db.engine's writer lock).

The daemon's intake and its processor process write the same file. SQLite's own busy handler
would make the second writer sleep and retry; the writer lock makes it wait in `flock`, which
the kernel hands over the moment the first writer commits, and drops with a writer that dies.
The kernel's lock table (/proc/locks) shows a process waiting there as a blocked waiter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from gateway.db.engine import make_engine
from tests.harness import wait_until

REPO = Path(__file__).resolve().parents[1]

# Modes: "go" writes and commits; "hold" holds its write transaction until told (or killed);
# "impatient" meets another write transaction at once, instead of SQLite's busy handler
# sleeping until it ends: it fails where another writer's COMMIT is still being written.
_WRITE = """
import sys
from sqlalchemy import event, text
from gateway.db.engine import make_engine
engine = make_engine(sys.argv[1])
if sys.argv[3] == "impatient":
    event.listen(engine, "connect", lambda dbapi_connection, record: dbapi_connection.execute("PRAGMA busy_timeout=0"))
with engine.begin() as conn:
    conn.execute(text("INSERT INTO note (x) VALUES (:x)"), {"x": int(sys.argv[2])})
    print("in", flush=True)
    if sys.argv[3] == "hold":
        sys.stdin.readline()
print("written", flush=True)
"""


def _env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("POSTDESK_")}


def _writer(url: str, value: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _WRITE, url, str(value), mode], cwd=REPO, env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _flock_waiters(inode: int) -> list[int]:
    """Pids blocked in flock on the file with this inode, from the kernel's lock table."""
    waiting = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == "->" and fields[2] == "FLOCK" and fields[6].endswith(f":{inode}"):
            waiting.append(int(fields[5]))
    return waiting


def _store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE note (x INTEGER)"))
    engine.dispose()
    return url


def _notes(url: str) -> list[int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [x for (x,) in conn.execute(text("SELECT x FROM note ORDER BY x"))]
    finally:
        engine.dispose()


def test_a_second_writer_waits_in_the_kernel_and_goes_on_when_the_first_commits(tmp_path: Path) -> None:
    url = _store(tmp_path)
    inode = (tmp_path / "queue.db-writer").stat().st_ino
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO note (x) VALUES (1)"))
        second = _writer(url, 2, "go")
        # Waiting in flock, not sleeping in SQLite's busy handler.
        assert wait_until(lambda: _flock_waiters(inode), what="the second writer in the lock queue") == [second.pid]
        assert second.poll() is None
    out, err = second.communicate(timeout=60)
    engine.dispose()
    assert second.returncode == 0, err
    assert out.split() == ["in", "written"]
    assert _notes(url) == [1, 2]


def test_the_next_writer_starts_only_once_the_commit_before_it_has_returned(tmp_path: Path) -> None:
    # SQLAlchemy's commit event comes before the driver's COMMIT: a queue left there hands the
    # lock over while SQLite is still writing the commit, and the next writer's BEGIN IMMEDIATE
    # meets it (here at once as "database is locked"; in the daemon as a busy sleep, queue held).
    url = _store(tmp_path)
    inode = (tmp_path / "queue.db-writer").stat().st_ino
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bulk (b BLOB)"))
    with engine.begin() as conn:
        # Enough pages that the COMMIT takes a while to write and sync.
        conn.execute(text("INSERT INTO bulk (b) VALUES (:b)"), [{"b": os.urandom(1 << 20)} for _ in range(48)])
        second = _writer(url, 2, "impatient")
        assert wait_until(lambda: _flock_waiters(inode), what="the second writer in the lock queue") == [second.pid]
    out, err = second.communicate(timeout=60)
    engine.dispose()
    assert second.returncode == 0, err
    assert out.split() == ["in", "written"]
    assert _notes(url) == [2]


def test_a_writer_killed_while_it_holds_the_lock_does_not_stop_the_others(tmp_path: Path) -> None:
    url = _store(tmp_path)
    holder = _writer(url, 1, "hold")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "in"
    inode = (tmp_path / "queue.db-writer").stat().st_ino
    second = _writer(url, 2, "go")
    wait_until(lambda: _flock_waiters(inode), what="the second writer in the lock queue")
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=30)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "written" in out
    # The killed writer's transaction was never committed; the second one was.
    assert _notes(url) == [2]
