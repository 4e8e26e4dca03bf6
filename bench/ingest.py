"""SMTP intake and end-to-end rate of Postdesk, next to a bare aiosmtpd sink in the same run.

    python bench/ingest.py [--messages 2000] [--processes 2] [--db sqlite|postgresql] [--daemons 1]
                           [--warmup 20] [--set POSTDESK_X=Y]

The same load generator (several client processes, persistent SMTP connections, as fast as the
server accepts) drives first a bare aiosmtpd server that accepts and discards, then one or more
Postdesk daemons on one scratch store whose relay is a sink in this process. Every mail comes
from a new customer, so each one opens a ticket and is confirmed; with `--daemons 2` the client
processes are spread over the daemons. The daemons run with the production poll intervals, the
web and metrics listeners off (bench/latency.py's settings).

End to end means: every message's confirmation received by the relay sink. Each confirmation is
matched to the mail it answers as bench/latency.py matches it (the mail's Message-ID in
In-Reply-To or References, counted only when it goes to that mail's sender); the staff notices
each new ticket also sends are counted apart and never as confirmations. The end-to-end rate is
the confirmations received divided by the time from the first message sent until the last
confirmation arrived. Printed: accepted messages/s and 250 latency percentiles for both servers,
the end-to-end rate and 250 -> confirmation percentiles, the staff mail, each rate as a ratio to
the bare sink, and the daemons' CPU per message (each with its processor process, where it has
one; until the relay went quiet, so the staff mail is in it) and peak resident memory, of the
largest process and of a daemon with its processor process. Prints figures; asserts nothing.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# bench/latency.py imports this module too; only its attributes are used here, at call time,
# so the import works whichever of the two scripts is run.
from bench import latency  # noqa: E402
from tests.harness import Daemon, Database, free_port, make_mail  # noqa: E402

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
THREADS_PER_PROCESS = 4
EXTRA_ENV: dict[str, str] = {}
# The relay is taken as done with the staff notices once no mail arrived for this long.
QUIET_SECONDS = 3.0


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


def drive_mail(ports: list[int], messages: list[tuple[str, bytes]], processes: int) -> list[tuple[str, float, float]]:
    """Send (sender, raw) mails; client process i sends its share to ports[i mod len(ports)].
    Returns (sender, send started, 250 received) per mail."""
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=_client, args=(ports[i % len(ports)], messages[i::processes], out))
             for i in range(processes)]
    for proc in procs:
        proc.start()
    results = [item for _ in procs for item in out.get()]
    for proc in procs:
        proc.join()
    return results


def drive(port: int, total: int, processes: int) -> list[tuple[str, float, float]]:
    """`total` mails from new customers to one server (bench/peer_django_helpdesk.py records
    them by replacing `make_mail` in this module)."""
    messages = []
    for i in range(total):
        sender = f"bench-{uuid.uuid4().hex[:10]}@kund.example"
        messages.append((sender, make_mail(sender=sender, subject=f"Bench message {i}", body="Larmet tjuter.\n" * 20)))
    return drive_mail([port], messages, processes)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarise(name: str, results: list[tuple[str, float, float]]) -> float:
    start = min(r[1] for r in results)
    end = max(r[2] for r in results)
    rate = len(results) / (end - start)
    latencies = [(r[2] - r[1]) * 1000 for r in results]
    print(f"{name:<34} {rate:8.0f} msg/s accepted   250 latency p50 {percentile(latencies, .5):6.1f} ms  "
          f"p99 {percentile(latencies, .99):6.1f} ms", flush=True)
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


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: what else ran on the machine during a run."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def family(pid: int) -> list[int]:
    """The process and every live process below it (a daemon and its processor process)."""
    found, index = [pid], 0
    while index < len(found):
        for task in Path(f"/proc/{found[index]}/task").glob("*/children"):
            try:
                found += [int(child) for child in task.read_text().split()]
            except OSError:  # the thread or the process ended meanwhile
                pass
        index += 1
    return found


def _own_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time so far of a process and its live descendants."""
    return sum(_own_cpu(member) for member in family(pid))


def _own_peak(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:")), 0.0)


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident size (VmHWM) among a process and its descendants."""
    return max(_own_peak(member) for member in family(pid))


def peak_rss_total_mb(pid: int) -> float:
    """The peaks of a process and its descendants added up: what the daemon holds at most."""
    return sum(_own_peak(member) for member in family(pid))


def wait_quiet(sink: latency.Stamping, quiet: float = QUIET_SECONDS, timeout: float = 300) -> None:
    """Until no mail reached the relay for `quiet` seconds (the outbox has sent what it queued)."""
    deadline = time.monotonic() + timeout
    count, since = sink.received, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.2)
        if sink.received != count:
            count, since = sink.received, time.monotonic()


@dataclass(frozen=True)
class EndToEnd:
    """One measured run through real daemons, each mail's confirmation matched to it."""

    results: list[tuple[str, float, float]]  # (sender, send started, 250) per mail
    confirmed: int  # mails whose confirmation reached their sender at the relay
    rate: float  # confirmed / (last confirmation - first send)
    p50_ms: float  # 250 -> confirmation at the relay
    p99_ms: float
    other_mail: int  # every other mail the relay received: the staff notices of the new tickets
    cpu_ms: float  # the daemons' CPU per message until the relay went quiet
    own_cpu_ms: float  # of that, the daemons' own (intake, outbox, scheduler); the rest is their processors'
    peak_rss_mb: float  # the largest process's (a daemon's, or its processor process's)
    peak_total_mb: float  # the largest daemon's with its processor process

    @property
    def total(self) -> int:
        return len(self.results)


def _figures(mail: list[tuple[str, str, bytes]], results: list[tuple[str, float, float]],
             sink: latency.Stamping) -> tuple[int, float, float, float]:
    """(confirmed, rate, p50, p99) from the matched confirmations."""
    accepted_at = {sender: end for sender, _, end in results}
    sender_of = {message_id: sender for message_id, sender, _ in mail}
    arrivals = dict(sink.confirmed)
    if not arrivals:
        return 0, 0.0, 0.0, 0.0
    waits = [(at - accepted_at[sender_of[message_id]]) * 1000 for message_id, at in arrivals.items()]
    rate = len(arrivals) / (max(arrivals.values()) - min(start for _, start, _ in results))
    return len(arrivals), rate, percentile(waits, .5), percentile(waits, .99)


def end_to_end(ports: list[int], pids: list[int], sink: latency.Stamping, total: int, processes: int,
               timeout: float = 900) -> EndToEnd:
    """Send `total` mails from new customers over `ports`; wait for every confirmation, then
    for the relay to go quiet."""
    mail = latency.messages(total)
    wait_quiet(sink, quiet=1.0)  # what an earlier run or the warm-up queued is not counted
    received_before = sink.received
    sink.expect(mail)
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    own_before = sum(_own_cpu(pid) for pid in pids)
    results = drive_mail(ports, [(sender, raw) for _, sender, raw in mail], processes)
    sink.wait_confirmed(timeout=timeout)
    confirmed, rate, p50, p99 = _figures(mail, results, sink)
    wait_quiet(sink)
    cpu_ms = (sum(cpu_seconds(pid) for pid in pids) - cpu_before) / total * 1000
    own_ms = (sum(_own_cpu(pid) for pid in pids) - own_before) / total * 1000
    other = sink.received - received_before - confirmed
    return EndToEnd(results, confirmed, rate, p50, p99, other, cpu_ms, own_ms, max(peak_rss_mb(pid) for pid in pids),
                    max(peak_rss_total_mb(pid) for pid in pids))


def show(name: str, run: EndToEnd, base_rate: float) -> float:
    """Print a run's figures next to the bare sink's rate; returns its accepted rate."""
    accepted = summarise(name, run.results)
    whole = "" if run.confirmed == run.total else "  INCOMPLETE: the rate counts only these"
    print(f"{'  end to end (confirmation at sink)':<34} {run.rate:8.0f} msg/s   250 -> confirmation "
          f"p50 {run.p50_ms:6.0f} ms  p99 {run.p99_ms:6.0f} ms  ({run.confirmed}/{run.total} confirmed{whole})")
    print(f"{'  staff mail (counted apart)':<34} {run.other_mail:8d} mails, {run.other_mail / run.total:.2f} per message")
    print(f"{'  ratio to the bare sink':<34} {accepted / base_rate:8.2f} accepted, {run.rate / base_rate:.2f} end to end; "
          f"daemon CPU {run.cpu_ms:.2f} ms per message, peak RSS {run.peak_rss_mb:.0f} MB "
          f"({run.peak_total_mb:.0f} MB with its processor process)", flush=True)
    if run.cpu_ms - run.own_cpu_ms > 0.005:
        print(f"{'  CPU per message, split':<34} {run.own_cpu_ms:8.2f} ms in the daemon (SMTP in, outbox out), "
              f"{run.cpu_ms - run.own_cpu_ms:.2f} ms in its processor process", flush=True)
    return accepted


@contextmanager
def daemons(db: Database, sink: latency.Stamping, folder: Path, count: int,
            env: dict[str, str]) -> Iterator[list[Daemon]]:
    """`count` daemons on one store and one relay, started one after the other (the first
    migrates the store); stopped again on leaving."""
    started: list[Daemon] = []
    try:
        for n in range(count):
            started.append(Daemon(db, sink, folder / f"daemon-{n}.log", env_extra=env).start(timeout=120))
        yield started
    finally:
        for daemon in started:
            daemon.stop()


def pids_of(running: list[Daemon]) -> list[int]:
    return [daemon.proc.pid for daemon in running if daemon.proc is not None]


def postdesk(args: argparse.Namespace, db_kind: str, base_rate: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(db_kind, Path(tmp))
        sink = latency.Stamping()
        sink.start()
        env = {**latency.PRODUCTION_ENV, **EXTRA_ENV}
        try:
            with daemons(db, sink, Path(tmp), args.daemons, env) as running:
                ports = [daemon.port for daemon in running]
                for daemon in running:
                    latency.warm_up(daemon.port, sink, args.warmup)
                run = end_to_end(ports, pids_of(running), sink, args.messages, args.processes)
                plural = "s" if args.daemons > 1 else ""
                show(f"postdesk ({db_kind}, {args.daemons} daemon{plural})", run, base_rate)
        finally:
            sink.stop()
            db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--daemons", type=int, default=1, help="daemons on the one store (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="mails sent to each daemon and confirmed before the measured run (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="POSTDESK_X=Y",
                        help="extra daemon setting, e.g. POSTDESK_PROCESSOR__BATCH_SIZE=16")
    args = parser.parse_args()
    EXTRA_ENV.update(item.split("=", 1) for item in args.set)
    print(f"{args.messages} messages, {args.processes} client processes x {THREADS_PER_PROCESS} persistent "
          f"connections; load average {load_average()}", flush=True)
    base = baseline(args.messages, args.processes)
    for kind in args.db or ["sqlite"]:
        postdesk(args, kind, base)
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
