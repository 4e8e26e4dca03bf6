"""Postdesk's processor alone, in one process, on a directory of message files.

    python bench/processor_alone.py MAIL_DIR RCPT

Started by bench/peer_django_helpdesk.py with the same POSTDESK_* settings as the daemon it runs
(`tests.harness.Daemon.env`), never on its own. It migrates a fresh store, queues every file of
MAIL_DIR as inbound mail from its From address to RCPT in one transaction (untimed: that is intake's work), then runs
`Processor.run_batch` until the queue is empty, as the daemon's processor loop does: parse,
classify, thread, route, create the ticket and queue its confirmation in the outbox. Nothing is
sent (no outbox sender runs) and no SMTP is on the path. Prints one JSON line with the figures.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import event, func, select  # noqa: E402

from bench.ingest import percentile  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.daemon import build_pipeline  # noqa: E402
from gateway.db.engine import make_engine, upgrade  # noqa: E402
from gateway.db.tables import OUTBOX  # noqa: E402
from gateway.intake.writer import enqueue_inbound  # noqa: E402
from gateway.process import Processor  # noqa: E402


def envelope_sender(raw: bytes) -> str:
    """The sender the bench's SMTP clients give for this message: its From address."""
    return parseaddr(str(BytesHeaderParser().parsebytes(raw)["From"]))[1]


def main() -> None:
    mail_dir, rcpt = Path(sys.argv[1]), sys.argv[2]
    config = load_config()
    engine = make_engine(config.database.url)
    upgrade(engine)
    raws = [path.read_bytes() for path in sorted(mail_dir.iterdir())]
    enqueue_inbound(engine, [{"source": "smtp", "mail_from": envelope_sender(raw), "rcpt_to": rcpt, "raw": raw}
                             for raw in raws])
    processor = Processor(engine, build_pipeline(config), "bench-processor-alone")
    statements = 0

    def count(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine, "before_cursor_execute", count)
    batches: list[tuple[int, float]] = []
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    while True:
        started = time.perf_counter()
        handled = processor.run_batch()
        if not handled:
            break
        batches.append((handled, (time.perf_counter() - started) * 1000))
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    # Every message waits for its whole batch: its latency is the batch's time, once per message.
    latencies = [ms for handled, ms in batches for _ in range(handled)]
    event.remove(engine, "before_cursor_execute", count)
    with engine.connect() as conn:
        queued = conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one()
    print(json.dumps({
        "messages": len(raws), "confirmations_queued": queued, "statements": statements, "wall_s": wall, "cpu_s": cpu,
        "p50_ms": percentile(latencies, .5), "p99_ms": percentile(latencies, .99), "max_ms": max(latencies),
        "batch_size": config.processor.batch_size,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
