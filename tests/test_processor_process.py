"""A daemon's processor runs in a process of its own, on both stores; `run_in: thread` keeps it inside.

`processor.run_in: auto` (the default) gives a daemon on two or more CPUs a child process for its
batches, so that SMTP intake and sending keep the daemon's interpreter to themselves. These
tests run real daemons and look at their processes in /proc: the child exists and does the
work, its latencies reach the daemon's /metrics, a killed child is replaced, and the child
ends with its daemon, whether the daemon stops or is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _require_backend
from tests.harness import REPO, Daemon, Database, Sink, free_port, make_mail, unique_address, wait_until


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to read its exit status."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _spawned(pid: int) -> list[int]:
    """The daemon's processor processes: its children started by multiprocessing's spawn (its
    resource tracker, the other child spawning brings, does no work of ours)."""
    found = []
    for child in _children(pid):
        try:
            if _alive(child) and b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            pass
    return found


def _processor_child(daemon: Daemon) -> int:
    assert daemon.proc is not None
    pid = daemon.proc.pid
    children = wait_until(lambda: _spawned(pid), what="processor process")
    assert len(children) == 1, children
    return children[0]


@pytest.fixture
def sink() -> Iterator[Sink]:
    relay = Sink().start()
    yield relay
    relay.stop()


def _daemon(kind: str, sink: Sink, tmp_path: Path, **settings: str) -> Iterator[Daemon]:
    _require_backend(kind)
    db = Database(kind, tmp_path)
    daemon = Daemon(db, sink, tmp_path / "daemon.log", env_extra=settings).start()
    try:
        yield daemon
    finally:
        daemon.stop()
        db.drop()


@pytest.fixture
def on_postgresql(sink: Sink, tmp_path: Path) -> Iterator[Daemon]:
    yield from _daemon("postgresql", sink, tmp_path, POSTDESK_METRICS__LISTEN=f"127.0.0.1:{free_port()}")


@pytest.fixture(params=["sqlite", "postgresql"])
def on_either(request: pytest.FixtureRequest, sink: Sink, tmp_path: Path) -> Iterator[Daemon]:
    yield from _daemon(request.param, sink, tmp_path, POSTDESK_METRICS__LISTEN=f"127.0.0.1:{free_port()}")


def _mail(daemon: Daemon, sink: Sink) -> str:
    sender = unique_address()
    daemon.send(make_mail(sender=sender, subject="Larmet piper"), sender=sender)
    sink.wait_for(sender, 1, timeout=60)
    return sender


def test_batches_run_in_a_child_process_and_count_in_the_daemons_metrics(on_either: Daemon, sink: Sink) -> None:
    child = _processor_child(on_either)
    _mail(on_either, sink)
    _mail(on_either, sink)
    assert "processor: in a process of its own" in on_either.log()
    listen = on_either.env()["POSTDESK_METRICS__LISTEN"]
    metrics = urllib.request.urlopen(f"http://{listen}/metrics", timeout=10).read().decode()
    assert "postdesk_processing_latency_seconds_count 2.0" in metrics
    # The child did the work: its CPU time grew while the mail was processed.
    fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(fields[11]) + int(fields[12]) > 0


def test_a_killed_processor_process_is_replaced(on_postgresql: Daemon, sink: Sink) -> None:
    first = _processor_child(on_postgresql)
    os.kill(first, signal.SIGKILL)
    _mail(on_postgresql, sink)
    assert "the processor process ended" in on_postgresql.log()
    assert _processor_child(on_postgresql) != first


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_the_processor_process_ends_with_its_daemon(on_postgresql: Daemon, sink: Sink, how: int) -> None:
    child = _processor_child(on_postgresql)
    _mail(on_postgresql, sink)
    # A stopped daemon exits cleanly after stopping its child; a killed one has no say in it.
    assert on_postgresql.stop(how) == (0 if how == signal.SIGTERM else -signal.SIGKILL)
    wait_until(lambda: not _alive(child), what="the processor process to end")
    assert not _alive(child)


def test_with_run_in_thread_the_processor_stays_in_the_daemon(sink: Sink, tmp_path: Path) -> None:
    for daemon in _daemon("sqlite", sink, tmp_path, POSTDESK_PROCESSOR__RUN_IN="thread"):
        _mail(daemon, sink)
        assert daemon.proc is not None
        assert _spawned(daemon.proc.pid) == []
        assert "processor: in a process of its own" not in daemon.log()


def test_rules_reloaded_on_sighup_route_the_next_mail_in_the_processor_process(sink: Sink, tmp_path: Path) -> None:
    """With file watching off, SIGHUP is the one way new rules come in; the child must get them too."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-base.yaml").write_text("- name: base\n  match: {subject: {contains: '[base]'}}\n"
                                        "  set: {tags: [base]}\n", encoding="utf-8")
    settings = {"POSTDESK_RULES__DIR": str(rules), "POSTDESK_RULES__WATCH_INTERVAL": "0"}
    for daemon in _daemon("postgresql", sink, tmp_path, **settings):
        _processor_child(daemon)
        before = _mail(daemon, sink)
        (rules / "05-hup.yaml").write_text("- name: hup\n  match: {subject: {contains: 'Larmet'}}\n"
                                           "  set: {department: orders}\n", encoding="utf-8")
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        wait_until(lambda running=daemon: "rules reloaded (SIGHUP)" in running.log(), what="the daemon's reload")
        after = _mail(daemon, sink)
        departments = dict(daemon.db.rows(
            "SELECT c.email, t.department FROM ticket t JOIN customer c ON c.id = t.customer_id"))
        assert departments[after] == "orders" and departments[before] != "orders"


def test_auto_keeps_the_thread_on_one_cpu() -> None:
    """A second process buys nothing where the daemon may run on one CPU (taskset, CPUAffinity=)."""
    from gateway.config import load_config
    from gateway.worker import runs_in_process, usable_cpus

    # The shipped settings alone (CI's POSTDESK_TEST_* variables are not settings).
    config = load_config(Path(__file__).resolve().parents[1] / "config" / "postdesk.yaml", environ={})
    assert config.processor.run_in == "auto"
    allowed = os.sched_getaffinity(0)  # this thread's: setting it below changes no other thread
    try:
        if len(allowed) >= 2:
            assert runs_in_process(config)
        os.sched_setaffinity(0, {min(allowed)})
        assert usable_cpus() == 1
        assert not runs_in_process(config)
        assert runs_in_process(config.model_copy(update={
            "processor": config.processor.model_copy(update={"run_in": "process"})}))
    finally:
        os.sched_setaffinity(0, allowed)


def test_a_daemon_killed_while_its_processor_process_starts_leaves_no_process_behind(
        sink: Sink, tmp_path: Path) -> None:
    """The child asks Linux to end it with its daemon only once it has started (half a second of
    imports): a daemon killed before that must not leave it waiting for batches forever."""
    _require_backend("sqlite")
    db = Database("sqlite", tmp_path)
    daemon = Daemon(db, sink, tmp_path / "daemon.log")
    with daemon.log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=REPO, env=daemon.env(),
                                stdout=log, stderr=log)
    try:
        (child,) = wait_until(lambda: _spawned(proc.pid), timeout=30, what="the processor process to be spawned")
        # Killed at once: the child is still importing, its start (the death signal) not yet run.
        proc.kill()
        assert proc.wait(30) == -signal.SIGKILL
        wait_until(lambda: not _alive(child), timeout=30, what="the orphaned processor process to end")
        assert not _alive(child)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        db.drop()
