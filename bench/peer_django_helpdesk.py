"""A peer figure: django-helpdesk's mail ingestion next to Postdesk, on the same messages, in one run.

    python bench/peer_django_helpdesk.py [--messages 2000] [--processes 2] [--peer-journal wal|delete]
                                         [--venv bench/.peer-venv]

The messages are bench/ingest.py's load (one new customer per message), made by its load
generator for the end-to-end run (3. below, run first) and recorded as made; the other two read
them from files:

1. django-helpdesk (pinned below) in its own virtual environment, created and pip-installed on
   first use: a minimal Django project on SQLite in a temporary folder, and its ingestion
   function called directly on each file (bench/peer_django_worker.py). No SMTP, no mailbox; the
   submitter's confirmation is rendered and built, then dropped, never sent.
2. Postdesk's processor alone in one process on a fresh SQLite store (bench/processor_alone.py):
   the files queued as inbound mail first, untimed, then processed until the queue is empty;
   each ticket's confirmation queued in the outbox, not sent. The same kind of work as 1.
3. Postdesk end to end: a daemon on SQLite driven over SMTP by bench/ingest.py's load generator,
   from the first message sent until the last confirmation reached the relay sink.

Printed for each: messages/s, latency per message (p50, p99), CPU per message (the process's CPU
time over the messages), peak RSS and SQL statements per message, and Postdesk's rates as a ratio to the peer's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import ingest  # noqa: E402
from tests.harness import Daemon, Database, Sink, make_mail  # noqa: E402

PEER_REQUIREMENTS = ("django-helpdesk==2.6.1", "Django==5.2.19")
RCPT = "support@telenta.example"
BENCH = Path(__file__).resolve().parent
Figures = dict[str, Any]


def peer_python(venv: Path) -> Path:
    """The peer venv's interpreter, created and installed with the pinned versions when missing."""
    python = venv / "bin" / "python"
    check = ("import importlib.metadata as m; "
             "print(f\"django-helpdesk=={m.version('django-helpdesk')}\", f\"Django=={m.version('Django')}\")")
    if python.exists():
        found = subprocess.run([python, "-c", check], capture_output=True, text=True)
        if found.returncode == 0 and tuple(found.stdout.split()) == PEER_REQUIREMENTS:
            return python
    print(f"creating {venv} with {' '.join(PEER_REQUIREMENTS)} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           *PEER_REQUIREMENTS], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return python


def recording_load() -> list[bytes]:
    """Record every message bench/ingest.py's load generator makes, in the order it makes them."""
    made: list[bytes] = []

    def make_and_record(**kwargs: Any) -> bytes:
        raw = make_mail(**kwargs)
        made.append(raw)
        return raw

    ingest.make_mail = make_and_record  # drive() looks the function up in its module at each call
    return made


def write_messages(folder: Path, messages: list[bytes]) -> None:
    folder.mkdir()
    for i, raw in enumerate(messages):
        (folder / f"{i:06d}.eml").write_bytes(raw)


def run_json(command: list[Any], **kwargs: Any) -> Figures:
    """Run a worker and read the JSON line it prints last."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{command[1]} failed with {done.returncode}:\n{done.stderr[-3000:]}")
    figures: Figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def peer(python: Path, mail: Path, tmp: Path, journal: str) -> Figures:
    work = tmp / f"peer-{journal}"
    work.mkdir()
    figures = run_json([python, BENCH / "peer_django_worker.py", mail, work, journal], cwd=work)
    assert figures["tickets"] == figures["messages"], figures
    return figures


QUIET = {"POSTDESK_LOGGING__LEVEL": "WARNING"}


def processor_alone(mail: Path, tmp: Path) -> Figures:
    db, sink = Database("sqlite", tmp), Sink()  # the sink is never started: nothing is sent
    try:
        figures = run_json([sys.executable, BENCH / "processor_alone.py", mail, RCPT], cwd=REPO,
                           env=Daemon(db, sink, tmp / "unused.log", env_extra=QUIET).env())
    finally:
        db.drop()
    assert figures["confirmations_queued"] == figures["messages"], figures
    return figures


def end_to_end(total: int, processes: int, tmp: Path) -> Figures:
    db, sink = Database("sqlite", tmp), Sink().start()
    daemon = Daemon(db, sink, tmp / "daemon-e2e.log", env_extra=QUIET).start()
    try:
        assert daemon.proc is not None
        cpu_before = ingest.cpu_seconds(daemon.proc.pid)
        results = ingest.drive(daemon.port, total, processes)
        got = sink.wait_total(total, timeout=600)
        cpu = ingest.cpu_seconds(daemon.proc.pid) - cpu_before
        sent_at = {sender: start for sender, start, _ in results}
        arrived = {m.rcpt_tos[0]: m.arrived_at for m in sink.messages}
        latencies = [(arrived[s] - sent_at[s]) * 1000 for s in arrived if s in sent_at]
        return {"messages": got, "wall_s": max(arrived.values()) - min(sent_at.values()), "cpu_s": cpu,
                "p50_ms": ingest.percentile(latencies, .5), "p99_ms": ingest.percentile(latencies, .99),
                "peak_rss_mb": ingest.peak_rss_mb(daemon.proc.pid)}
    finally:
        daemon.stop()
        sink.stop()
        db.drop()


def per_message(figures: Figures) -> tuple[float, float]:
    """Messages per second and CPU milliseconds per message."""
    return figures["messages"] / figures["wall_s"], figures["cpu_s"] / figures["messages"] * 1000


def row(name: str, figures: Figures, peer: Figures) -> str:
    rate, cpu_ms = per_message(figures)
    peer_rate, peer_cpu_ms = per_message(peer)
    sql = f"{figures['statements'] / figures['messages']:6.1f}" if "statements" in figures else f"{'-':>6}"
    return (f"{name:<38} {rate:6.0f} {figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f} {cpu_ms:7.2f} "
            f"{figures['peak_rss_mb']:6.0f} {sql} {rate / peer_rate:7.2f} {peer_cpu_ms / cpu_ms:7.2f}")


def report(peers: dict[str, Figures], alone: Figures, e2e: Figures, processes: int) -> None:
    first = next(iter(peers.values()))
    print(f"\n{'':<38} {'msg/s':>6} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>7} {'RSS MB':>6} {'SQL':>6} "
          f"{'rate x':>7} {'CPU x':>7}")
    for journal, figures in peers.items():
        print(row(f"django-helpdesk {first['helpdesk']}, SQLite {journal}", figures, first))
    print(row("postdesk processor alone, SQLite", alone, first))
    print(row("postdesk daemon end to end, SQLite", e2e, first))
    print(f"""
What each row measures (CPU ms: the process's CPU time / messages; RSS: its peak resident memory;
SQL: statements sent to SQLite per message, savepoints included, commits not, executemany once):
- django-helpdesk {first['helpdesk']} on Django {first['django']}: helpdesk.email.extract_email_metadata called
  directly on each file, one at a time (what its process_queue calls per message). No SMTP, no
  mailbox, no queue; the confirmation to the submitter is rendered and built ({first['confirmations_composed']} built),
  then dropped: never sent. Latency: one call. Peak RSS includes Django's start-up and migrate.
- postdesk processor alone: Processor.run_batch until the queue is empty, after the files were
  queued as inbound mail (untimed). Confirmations queued in the outbox ({alone['confirmations_queued']}), not sent.
  Latency: the batch's time (batches of {alone['batch_size']}), which every message in it waits for.
- postdesk daemon end to end: SMTP in over {processes} client processes x {ingest.THREADS_PER_PROCESS} connections, 250 after
  commit, processing, confirmation sent to the relay sink ({e2e['messages']} arrived). Rate: first
  message sent to last confirmation at the sink. Latency: 250 sent -> confirmation at the sink.
  CPU: the daemon process over the run, intake and sending included.
All on SQLite with synchronous=FULL (Postdesk: WAL). rate x: the row's messages/s over the first
row's; CPU x: the first row's CPU per message over the row's (above 1: less CPU than the peer).""")


def one_round(python: Path, args: argparse.Namespace) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f}; "
          f"{args.messages} messages", flush=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        sent = recording_load()
        print("postdesk daemon end to end ...", flush=True)
        e2e = end_to_end(args.messages, args.processes, tmp)
        write_messages(tmp / "mail", sent)
        peers = {}
        for journal in args.peer_journal or ["wal"]:
            print(f"django-helpdesk, SQLite {journal} ...", flush=True)
            peers[journal] = peer(python, tmp / "mail", tmp, journal)
        print("postdesk processor alone ...", flush=True)
        alone = processor_alone(tmp / "mail", tmp)
    report(peers, alone, e2e, args.processes)
    load = os.getloadavg()[0]
    shared = " (at or above the core count: other work shared the cores)" if load >= (os.cpu_count() or 1) else ""
    print(f"load average at the end {load:.1f}{shared}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2, help="SMTP client processes for the end-to-end run")
    parser.add_argument("--peer-journal", choices=["wal", "delete"], action="append",
                        help="SQLite journal mode of the peer: wal (as Postdesk, the default) or delete "
                             "(Django's own default); give it twice for both")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole comparison, one table each")
    parser.add_argument("--venv", type=Path, default=BENCH / ".peer-venv", help="the peer's virtual environment")
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Linux {platform.release()}")
    python = peer_python(args.venv)
    for _ in range(args.rounds):
        one_round(python, args)


if __name__ == "__main__":
    main()
