"""Bounded work per message: hostile mail through the real daemon, next to the unbounded cost.

    python bench/bounded.py [--requests 20] [--skip-baseline]

Printed, each with its baseline from the same run:
- nested HTML (0.6 MB and 2.2 MB of nested <div>s): seconds from the 250 until the message is
  stored, and the ticket page's time (p50/p95); baseline: nh3 on the same HTML unflattened,
  which is what processing and every page view did before (the 2.2 MB baseline is estimated
  from the 0.6 MB one: it grows with the square of the size);
- a 22 MB mail of 20-byte lines: the daemon's peak RSS (VmHWM) before and after it;
- 50 copies of one DKIM signature on a 5 MB body: CPU seconds of the proof, next to verifying
  every copy as before.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dkim  # noqa: E402

from gateway.agents.proof import dkim_pass  # noqa: E402
from gateway.mail.htmltext import sanitize_html  # noqa: E402
from tests.dkimkeys import make_key, sign  # noqa: E402
from tests.harness import Daemon, Database, Sink, unique_address, wait_until  # noqa: E402
from tests.test_bounded_work import _html_mail, _nested, _peak_rss_mb  # noqa: E402
from tests.web.site import Client  # noqa: E402


def _stored_after(daemon: Daemon, raw: bytes, sender: str) -> str:
    """How long the 250 took, and the processor's time from receipt to processed."""
    started = time.perf_counter()
    daemon.send(raw, sender=sender)
    accepted = time.perf_counter() - started
    wait_until(lambda: daemon.db.scalar("SELECT count(*) FROM message WHERE author = :a", a=sender),
               timeout=900, what="stored")
    row = daemon.db.rows("SELECT i.received_at, i.processed_at FROM inbound i JOIN message m ON m.inbound_id = i.id "
                         "WHERE m.author = :a", a=sender)[0]
    processed = (_when(row.processed_at) - _when(row.received_at)).total_seconds()
    return f"250 after {accepted:.2f} s, processed {processed:.2f} s after receipt"


def _when(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _page_times(daemon: Daemon, sink: Sink, sender: str, requests: int) -> list[float]:
    text = sink.wait_for(sender, timeout=60)[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"https?://[^\s/]+(/t/\S+)", text)
    assert link
    client = Client(daemon.web_port)
    path = client.get(link.group(1)).header("location")
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        assert client.get(path).status == 200
        times.append(time.perf_counter() - started)
    return times


def nested_html(daemon: Daemon, sink: Sink, requests: int, baseline: bool) -> None:
    base_small = 0.0
    for label, levels in (("0.6 MB", 55_000), ("2.2 MB", 200_000)):
        html = _nested(levels)
        sender = unique_address("bench-nested")
        stored = _stored_after(daemon, _html_mail(sender, html), sender)
        pages = sorted(_page_times(daemon, sink, sender, requests))
        p95 = pages[max(int(len(pages) * 0.95) - 1, 0)]
        if baseline and levels == 55_000:
            started = time.perf_counter()
            sanitize_html(html)
            base_small = time.perf_counter() - started
            base = f"nh3 unflattened {base_small:.1f} s (once per processing and per page view)"
        elif base_small:
            base = f"nh3 unflattened ≈ {base_small * (levels / 55_000) ** 2:.0f} s (estimated, quadratic)"
        else:
            base = "baseline skipped"
        print(f"nested HTML {label}: {stored}; page p50 "
              f"{statistics.median(pages) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; {base}", flush=True)


def big_mail(daemon: Daemon) -> None:
    assert daemon.proc is not None
    before = _peak_rss_mb(daemon.proc.pid)
    sender = unique_address("bench-big")
    raw = f"From: {sender}\r\nTo: support@telenta.example\r\nSubject: Logg\r\n\r\n".encode()
    raw += b"short line of text\r\n" * 1_100_000
    stored = _stored_after(daemon, raw, sender)
    print(f"22 MB of short lines: {stored}; daemon peak RSS {before:.0f} MB before, "
          f"{_peak_rss_mb(daemon.proc.pid):.0f} MB after (1.27 GB before the caps, issue 17)", flush=True)


def dkim_copies() -> None:
    key = make_key()
    raw = (b"From: eva@telenta.example\r\nTo: support@telenta.example\r\nSubject: x\r\nMessage-ID: <a@b>\r\n\r\n" +
           b"x" * 5_000_000 + b"\r\n")
    signed = sign(raw, key, domain="telenta.example")
    copies = signed[: len(signed) - len(raw)] * 50 + raw
    # A wrong key: every signature fails, so nothing stops early, as for a hostile sender.
    wrong = make_key().txt().encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return wrong

    started = time.process_time()
    dkim_pass(copies, "eva@telenta.example", lookup)
    capped = time.process_time() - started
    started = time.process_time()
    checker = dkim.DKIM(copies)
    for index in range(50):
        try:
            checker.verify(index, dnsfunc=lookup)
        except dkim.DKIMException:
            pass
    every = time.process_time() - started
    print(f"50 copies of one DKIM signature, 5 MB body: {capped:.2f} s CPU; verifying every copy: {every:.2f} s",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="page requests per nested ticket")
    parser.add_argument("--skip-baseline", action="store_true", help="do not time nh3 on unflattened HTML")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    sink = Sink().start()
    db = Database("sqlite", tmp)
    daemon = Daemon(db, sink, tmp / "daemon.log", env_extra={"POSTDESK_SMTP__MAX_MESSAGE_SIZE": "30000000"}).start()
    try:
        nested_html(daemon, sink, args.requests, not args.skip_baseline)
        big_mail(daemon)
        dkim_copies()
    finally:
        daemon.stop()
        sink.stop()
        db.drop()


if __name__ == "__main__":
    main()
