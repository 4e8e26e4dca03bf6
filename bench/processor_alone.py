"""Postdesk's processor alone, in one process, on a directory of message files.

    python bench/processor_alone.py [--messages 1000] [--db sqlite|postgresql]
    python bench/processor_alone.py MAIL_DIR RCPT

With MAIL_DIR and RCPT (how bench/peer_django_helpdesk.py starts it, with the POSTDESK_*
settings of the daemon it runs, `tests.harness.Daemon.env`): it migrates a fresh store, queues
every file of MAIL_DIR as inbound mail from its From address to RCPT in one transaction (timed
apart: that is intake's work, and the baseline below), then runs `Processor.run_batch` until the
queue is empty, as the daemon's processor loop does: parse, classify, thread, route, create the
ticket, queue its confirmation and the staff notices in the outbox. Nothing is sent (no outbox
sender runs) and no SMTP is on the path. Prints one JSON line with the figures; the outbox rows
are counted by kind, confirmations apart from the rest.

Without them (its defaults): `--messages` mails from new customers (bench/latency.py's, each
opens a ticket) are written to a scratch folder, a scratch store of `--db` is made, and the
mode above runs in a subprocess with the harness's daemon settings; printed as a table next to
two baselines from the same run: the stdlib parsing each message (`email.message_from_bytes`,
the default policy) and writing the same messages as inbound rows in one transaction.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import resource
import subprocess
import sys
import tempfile
import time
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, event, func, select  # noqa: E402

from bench import ingest, latency  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.daemon import build_pipeline  # noqa: E402
from gateway.db.engine import make_engine, upgrade  # noqa: E402
from gateway.db.tables import OUTBOX  # noqa: E402
from gateway.intake.writer import enqueue_inbound  # noqa: E402
from gateway.process import Processor  # noqa: E402
from tests.harness import Daemon, Database, Sink  # noqa: E402

RCPT = "support@telenta.example"
Figures = dict[str, Any]


def envelope_sender(raw: bytes) -> str:
    """The sender the bench's SMTP clients give for this message: its From address."""
    return parseaddr(str(BytesHeaderParser().parsebytes(raw)["From"]))[1]


def queued_by_kind(engine: Engine) -> dict[str, int]:
    """Outbox rows per kind: the confirmations, and the staff notices beside them."""
    with engine.connect() as conn:
        rows = conn.execute(select(OUTBOX.c.kind, func.count()).group_by(OUTBOX.c.kind)).all()
    return {str(kind): int(count) for kind, count in rows}


def queue(engine: Engine, raws: list[bytes], rcpt: str) -> float:
    """Every message as an inbound row, in one transaction; returns the seconds it took."""
    started = time.perf_counter()
    enqueue_inbound(engine, [{"source": "smtp", "mail_from": envelope_sender(raw), "rcpt_to": rcpt, "raw": raw}
                             for raw in raws])
    return time.perf_counter() - started


def drain(processor: Processor) -> list[tuple[int, float]]:
    """`run_batch` until the queue is empty: (messages handled, milliseconds) per batch."""
    batches: list[tuple[int, float]] = []
    while True:
        started = time.perf_counter()
        handled = processor.run_batch()
        if not handled:
            return batches
        batches.append((handled, (time.perf_counter() - started) * 1000))


def measure(mail_dir: Path, rcpt: str) -> Figures:
    """The processor alone on the files of `mail_dir`, configured from the environment."""
    config = load_config()
    engine = make_engine(config.database.url)
    upgrade(engine)
    raws = [path.read_bytes() for path in sorted(mail_dir.iterdir())]
    queue_s = queue(engine, raws, rcpt)
    processor = Processor(engine, build_pipeline(config), "bench-processor-alone")
    statements = 0

    def count(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine, "before_cursor_execute", count)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    batches = drain(processor)
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    event.remove(engine, "before_cursor_execute", count)
    # Every message waits for its whole batch: its latency is the batch's time, once per message.
    latencies = [ms for handled, ms in batches for _ in range(handled)]
    kinds = queued_by_kind(engine)
    return {
        "messages": len(raws), "confirmations_queued": kinds.pop("confirmation", 0),
        "other_mail_queued": sum(kinds.values()), "other_kinds": kinds, "statements": statements,
        "wall_s": wall, "cpu_s": cpu, "queue_s": queue_s,
        "p50_ms": ingest.percentile(latencies, .5), "p99_ms": ingest.percentile(latencies, .99),
        "max_ms": max(latencies), "batch_size": config.processor.batch_size,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def stdlib_parse_ms(raws: list[bytes]) -> float:
    """Baseline: CPU milliseconds per message of the stdlib's parse alone."""
    started = time.process_time()
    for raw in raws:
        email.message_from_bytes(raw, policy=email.policy.default)
    return (time.process_time() - started) / len(raws) * 1000


def standalone(total: int, kind: str) -> tuple[Figures, float]:
    """Write `total` mails to a scratch folder and run the measuring mode on a scratch store."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mail"
        folder.mkdir()
        raws = [raw for _, _, raw in latency.messages(total)]
        for i, raw in enumerate(raws):
            (folder / f"{i:06d}.eml").write_bytes(raw)
        db = Database(kind, Path(tmp))
        env = Daemon(db, Sink(), Path(tmp) / "unused.log", env_extra={"POSTDESK_LOGGING__LEVEL": "WARNING"}).env()
        try:
            done = subprocess.run([sys.executable, __file__, str(folder), RCPT], cwd=REPO, env=env,
                                  capture_output=True, text=True)
        finally:
            db.drop()
        if done.returncode != 0:
            raise RuntimeError(f"processor_alone.py failed with {done.returncode}:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1]), stdlib_parse_ms(raws)


def show(kind: str, figures: Figures, parse_ms: float) -> None:
    n = figures["messages"]
    print(f"{'processor alone (' + kind + ')':<44} {n / figures['wall_s']:8.0f} msg/s  "
          f"CPU {figures['cpu_s'] / n * 1000:6.2f} ms/msg  batch p50 {figures['p50_ms']:6.0f} ms  "
          f"p99 {figures['p99_ms']:6.0f} ms  {figures['statements'] / n:5.1f} SQL/msg  "
          f"peak RSS {figures['peak_rss_mb']:.0f} MB")
    print(f"{'  outbox rows queued':<44} {figures['confirmations_queued']}/{n} confirmations, "
          f"{figures['other_mail_queued']} other mail {figures['other_kinds']} (batch size {figures['batch_size']})")
    print(f"{'  baseline: inbound rows, one transaction':<44} {n / figures['queue_s']:8.0f} msg/s")
    print(f"{'  baseline: stdlib parse alone':<44} {'':8}        CPU {parse_ms:6.2f} ms/msg", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mail_dir", nargs="?", type=Path, help="message files (with RCPT: the measuring mode)")
    parser.add_argument("rcpt", nargs="?")
    parser.add_argument("--messages", type=int, default=1000, help="without MAIL_DIR (default: %(default)s)")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append",
                        help="without MAIL_DIR: the store; repeat for both (default: sqlite)")
    args = parser.parse_args()
    if args.mail_dir is not None and args.rcpt:
        print(json.dumps(measure(args.mail_dir, args.rcpt)))
        return
    print(f"{args.messages} messages from new customers; load average {ingest.load_average()}", flush=True)
    for kind in args.db or ["sqlite"]:
        show(kind, *standalone(args.messages, kind))
    print(f"load average at the end {ingest.load_average()}")


if __name__ == "__main__":
    main()
