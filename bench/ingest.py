"""SMTP intake and end-to-end rate of Postdesk, next to a bare aiosmtpd sink in the same run.

    python bench/ingest.py [--messages 2000] [--connections 8] [--processes 2] [--db sqlite|postgresql]

The same load generator (several client processes, persistent SMTP connections) drives first a
bare aiosmtpd server that accepts and discards, then a Postdesk daemon whose relay is a counting
sink. Printed: accepted messages/s and 250 latency percentiles for both, Postdesk's end-to-end
rate (first message sent until the last confirmation reached the sink) and end-to-end latency,
and the daemon's peak resident memory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness import Daemon, Database, Sink, free_port, make_mail  # noqa: E402

SINK_SCRIPT = """
import asyncio, sys
from aiosmtpd.smtp import SMTP
class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK"
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Discard(), loop=loop), "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _client(port: int, messages: list[tuple[str, bytes]], out: mp.Queue) -> None:  # type: ignore[type-arg]
    """One client process: a thread per connection, each sending its share over one session."""
    results: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def run(share: list[tuple[str, bytes]]) -> None:
        client = smtplib.SMTP("127.0.0.1", port, timeout=120)
        mine = []
        for sender, raw in share:
            start = time.time()
            client.sendmail(sender, ["support@telenta.example"], raw)
            mine.append((sender, start, time.time()))
        client.quit()
        with lock:
            results.extend(mine)

    per_thread = max(1, len(messages) // max(1, THREADS_PER_PROCESS))
    shares = [messages[i:i + per_thread] for i in range(0, len(messages), per_thread)]
    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(results)


THREADS_PER_PROCESS = 4
EXTRA_ENV: dict[str, str] = {}


def drive(port: int, total: int, processes: int) -> list[tuple[str, float, float]]:
    messages = []
    for i in range(total):
        sender = f"bench-{uuid.uuid4().hex[:10]}@kund.example"
        messages.append((sender, make_mail(sender=sender, subject=f"Bench message {i}", body="Larmet tjuter.\n" * 20)))
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=_client, args=(port, messages[i::processes], out)) for i in range(processes)]
    for proc in procs:
        proc.start()
    results = [item for _ in procs for item in out.get()]
    for proc in procs:
        proc.join()
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarise(name: str, results: list[tuple[str, float, float]]) -> float:
    start = min(r[1] for r in results)
    end = max(r[2] for r in results)
    rate = len(results) / (end - start)
    latencies = [(r[2] - r[1]) * 1000 for r in results]
    print(f"{name:<34} {rate:8.0f} msg/s accepted   250 latency p50 {percentile(latencies, .5):6.1f} ms  "
          f"p99 {percentile(latencies, .99):6.1f} ms")
    return rate


def baseline(total: int, processes: int) -> float:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SINK_SCRIPT, str(port)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    try:
        return summarise("bare aiosmtpd sink (baseline)", drive(port, total, processes))
    finally:
        proc.terminate()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def postdesk(total: int, processes: int, db_kind: str, base_rate: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(db_kind, Path(tmp))
        sink = Sink().start()
        env = {"POSTDESK_LOGGING__LEVEL": "WARNING", **EXTRA_ENV}
        daemon = Daemon(db, sink, Path(tmp) / "daemon.log", env_extra=env).start()
        try:
            assert daemon.proc is not None
            cpu_before = cpu_seconds(daemon.proc.pid)
            results = drive(daemon.port, total, processes)
            rate = summarise(f"postdesk ({db_kind})", results)
            got = sink.wait_total(total, timeout=600)
            rss = peak_rss_mb(daemon.proc.pid)
            cpu_ms = (cpu_seconds(daemon.proc.pid) - cpu_before) / total * 1000
            sent_at = {r[0]: r[1] for r in results}
            arrived = {m.rcpt_tos[0]: m.arrived_at for m in sink.messages}
            e2e = [(arrived[s] - sent_at[s]) * 1000 for s in arrived if s in sent_at]
            e2e_rate = got / (max(arrived.values()) - min(sent_at.values()))
            print(f"{'postdesk end-to-end':<34} {e2e_rate:8.0f} msg/s (250 -> confirmation at the sink)   "
                  f"p50 {percentile(e2e, .5):6.0f} ms  p99 {percentile(e2e, .99):6.0f} ms  ({got}/{total})")
            print(f"{'ratio to baseline':<34} {rate / base_rate:8.2f} accepted, {e2e_rate / base_rate:.2f} end-to-end; "
                  f"daemon peak RSS {rss:.0f} MB, CPU {cpu_ms:.2f} ms per message")
        finally:
            daemon.stop()
            sink.stop()
            db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--set", action="append", default=[], metavar="POSTDESK_X=Y",
                        help="extra daemon setting, e.g. POSTDESK_PROCESSOR__BATCH_SIZE=16")
    args = parser.parse_args()
    EXTRA_ENV.update(item.split("=", 1) for item in args.set)
    print(f"{args.messages} messages, {args.processes} client processes x {THREADS_PER_PROCESS} persistent connections")
    base = baseline(args.messages, args.processes)
    for kind in args.db or ["sqlite"]:
        postdesk(args.messages, args.processes, kind, base)


if __name__ == "__main__":
    main()
