"""Latency at a fixed offered rate: 250 and 250 -> confirmation, Postdesk next to a bare aiosmtpd sink.

    python bench/latency.py [--rate 300] [--seconds 30] [--connections 8] [--db sqlite|postgresql]
                            [--set POSTDESK_X=Y]

One client process offers mail at a fixed rate (an open schedule: message k is due at
start + k / rate) over persistent SMTP connections, first to the bare aiosmtpd sink of
bench/ingest.py (the baseline), then to a real Postdesk daemon on a scratch store whose relay is
a sink in this process that timestamps every mail it receives. Each confirmation is matched to
the mail it answers by that mail's Message-ID in its In-Reply-To or References, and counted
only when it goes to that mail's sender. Every mail comes from a new customer, so each one opens
a ticket and is confirmed.

Printed: p50/p95/p99/max of the 250 latency (from the moment the client started sending; and
from the moment the schedule said it was due, which also counts a connection that fell
behind), of 250 -> confirmation at the relay sink, the achieved rate, the daemon's CPU per
message and its resident memory. The daemon runs with the production poll intervals (the
harness's shorter test values are put back to the defaults). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import ingest  # noqa: E402
from bench.scale import DAEMON_ENV, rss_mb  # noqa: E402
from tests.harness import Daemon, Database, Sink, free_port, make_mail  # noqa: E402

# The defaults of gateway/config/service.py, over the harness's shorter test intervals: the
# figures are a production daemon's (the loops are woken by events; the intervals are a fallback).
PRODUCTION_ENV = {
    **DAEMON_ENV,
    "POSTDESK_PROCESSOR__POLL_INTERVAL": "1.0",
    "POSTDESK_OUTBOX__POLL_INTERVAL": "1.0",
    "POSTDESK_OUTBOX__BACKOFF_INITIAL": "30",
    "POSTDESK_OUTBOX__BACKOFF_MAX": "3600",
}
_REFERRING = re.compile(rb"^(?:in-reply-to|references):((?:.*)(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_MSGID = re.compile(rb"<[^<>\s]+>")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Sent:
    """One mail as the client offered it: when it was due, when sending began, when the 250 came."""

    message_id: str
    sender: str
    due: float
    start: float
    accepted: float


class Stamping(Sink):
    """The relay: notes when each awaited confirmation arrived; reads only the header block."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited: dict[str, str] = {}  # Message-ID of a mail sent -> its sender
        self.confirmed: dict[str, float] = {}  # Message-ID of a mail sent -> its confirmation's arrival
        self.received = 0

    def expect(self, mail: list[tuple[str, str, bytes]]) -> None:
        with self._cond:
            self.awaited = {message_id: sender for message_id, sender, _ in mail}
            self.confirmed = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        head = _HEAD_END.split(bytes(envelope.content), maxsplit=1)[0]
        ids = [found.decode() for value in _REFERRING.findall(head) for found in _MSGID.findall(value)]
        with self._cond:
            self.received += 1
            for message_id in ids:
                # Only the mail to that mail's sender: notices to staff refer to it too.
                if self.awaited.get(message_id) in envelope.rcpt_tos and message_id not in self.confirmed:
                    self.confirmed[message_id] = at
            self._cond.notify_all()
        return "250 2.0.0 OK"

    def wait_confirmed(self, timeout: float, quiet: float = 15.0) -> None:
        """Until every awaited mail is confirmed, none was for `quiet` seconds, or `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            count, progress = len(self.confirmed), time.monotonic()
            while len(self.confirmed) < len(self.awaited):
                now = time.monotonic()
                if len(self.confirmed) > count:
                    count, progress = len(self.confirmed), now
                until = min(deadline, progress + quiet)
                if now >= until:
                    return
                self._cond.wait(until - now)


def messages(total: int) -> list[tuple[str, str, bytes]]:
    """`total` mails (Message-ID, sender, raw), each from a new customer: each opens a ticket."""
    found = []
    for i in range(total):
        sender = f"late-{uuid.uuid4().hex[:10]}@kund.example"
        message_id = f"<{uuid.uuid4().hex}@kund.example>"
        raw = make_mail(sender=sender, subject=f"Latency message {i}", body="Larmet tjuter.\n" * 20,
                        message_id=message_id)
        found.append((message_id, sender, raw))
    return found


def _connection(port: int, share: list[tuple[int, tuple[str, str, bytes]]], rate: float, t0: float,
                out: list[Sent]) -> None:
    """One persistent session sending its share, each mail no earlier than it is due."""
    client = smtplib.SMTP("127.0.0.1", port, timeout=120)
    for k, (message_id, sender, raw) in share:
        due = t0 + k / rate
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        start = time.time()
        client.sendmail(sender, ["support@telenta.example"], raw)
        out.append(Sent(message_id, sender, due, start, time.time()))
    client.quit()


def _client(port: int, mail: list[tuple[str, str, bytes]], rate: float, connections: int,
            out: mp.Queue) -> None:  # type: ignore[type-arg]
    """The client process: mail k goes on connection k mod `connections`, due at t0 + k / rate."""
    numbered = list(enumerate(mail))
    t0 = time.time() + 0.5  # the connections are open by then
    sent: list[Sent] = []
    threads = [threading.Thread(target=_connection, args=(port, numbered[j::connections], rate, t0, sent))
               for j in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(sent)


def offer(port: int, mail: list[tuple[str, str, bytes]], rate: float, connections: int) -> list[Sent]:
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    proc = mp.Process(target=_client, args=(port, mail, rate, connections, out))
    proc.start()
    sent: list[Sent] = out.get()
    proc.join()
    return sent


def row(name: str, values_ms: list[float], extra: str = "") -> None:
    if not values_ms:
        print(f"{name:<40} {'(none)':>9}")
        return
    cells = " ".join(f"{ingest.percentile(values_ms, share):9.1f}" for share in (.5, .95, .99))
    print(f"{name:<40} {cells} {max(values_ms):9.1f}  {extra}")


def header(rate: float, seconds: float, connections: int) -> None:
    print(f"offered {rate:g} messages/s for {seconds:g} s from one client process over {connections} "
          f"persistent connections")
    print(f"{'latency, ms':<40} {'p50':>9} {'p95':>9} {'p99':>9} {'max':>9}")


def achieved(sent: list[Sent]) -> float:
    return len(sent) / (max(s.accepted for s in sent) - min(s.start for s in sent))


def show_intake(name: str, sent: list[Sent]) -> None:
    row(f"{name}: 250 from send", [(s.accepted - s.start) * 1000 for s in sent],
        f"achieved {achieved(sent):.0f}/s of {len(sent)}")
    row(f"{name}: 250 from due time", [(s.accepted - s.due) * 1000 for s in sent])


@contextmanager
def bare_sink() -> Iterator[int]:
    """bench/ingest.py's bare aiosmtpd server that accepts and discards; yields its port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ingest.SINK_SCRIPT, str(port)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait()


def confirmations(sent: list[Sent], sink: Stamping) -> list[float]:
    """250 -> confirmation (ms) of each mail whose confirmation reached its sender at the sink."""
    return [(sink.confirmed[s.message_id] - s.accepted) * 1000 for s in sent if s.message_id in sink.confirmed]


def warm_up(port: int, sink: Stamping, count: int) -> None:
    """A few mails first, each confirmed before the measured run: the first mail a daemon
    processes loads what it loads once (language models, templates), which is start-up, not latency."""
    if count <= 0:
        return
    mail = messages(count)
    sink.expect(mail)
    offer(port, mail, 10, 1)
    sink.wait_confirmed(timeout=300)


def postdesk(kind: str, mail: list[tuple[str, str, bytes]], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(kind, Path(tmp))
        sink = Stamping()
        sink.start()
        env = {**PRODUCTION_ENV, **dict(item.split("=", 1) for item in args.set)}
        daemon = Daemon(db, sink, Path(tmp) / "daemon.log", env_extra=env).start(timeout=120)
        try:
            assert daemon.proc is not None
            pid = daemon.proc.pid
            warm_up(daemon.port, sink, args.warmup)
            sink.expect(mail)
            cpu_before = ingest.cpu_seconds(pid)
            sent = offer(daemon.port, mail, args.rate, args.connections)
            sink.wait_confirmed(timeout=600)
            cpu_ms = (ingest.cpu_seconds(pid) - cpu_before) / len(sent) * 1000
            show_intake(f"postdesk {kind}", sent)
            confirmed = confirmations(sent, sink)
            row(f"postdesk {kind}: 250 -> confirmation", confirmed, f"{len(confirmed)}/{len(sent)} confirmed")
            print(f"{'':<40} {sink.received} mails at the relay; daemon CPU {cpu_ms:.2f} ms per message; "
                  f"RSS {rss_mb(pid):.0f} MB at the end, peak {ingest.peak_rss_mb(pid):.0f} MB")
        finally:
            daemon.stop()
            sink.stop()
            db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300, help="messages offered per second (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=30, help="how long the rate is offered (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=8, help="persistent SMTP connections (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="mails sent and confirmed before the measured run (default: %(default)s)")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], action="append",
                        help="store of the daemon; repeat for both (default: sqlite)")
    parser.add_argument("--set", action="append", default=[], metavar="POSTDESK_X=Y",
                        help="extra daemon setting, e.g. POSTDESK_PROCESSOR__BATCH_SIZE=16")
    args = parser.parse_args()
    mail = messages(max(1, int(args.rate * args.seconds)))
    header(args.rate, args.seconds, args.connections)
    with bare_sink() as port:
        show_intake("bare aiosmtpd sink", offer(port, mail, args.rate, args.connections))
    for kind in args.db or ["sqlite"]:
        postdesk(kind, mail, args)


if __name__ == "__main__":
    main()
