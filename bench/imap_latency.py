"""Delay from IMAP APPEND to a stored ticket, through IDLE, next to polling in the same run.

    python bench/imap_latency.py [--messages 30] [--poll-interval 5]

Starts a private Dovecot (Debian's dovecot-imapd must be installed) and a Postdesk daemon
importing its INBOX, appends messages one at a time, and measures how long each takes to become
a ticket in the database; then does the same with IDLE off and polling every --poll-interval
seconds, the way other helpdesks fetch (Zammad 30 s, FreeScout 60 s). Prints median, p90 and
maximum for both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from tests.harness import Daemon, Database, Sink, make_mail  # noqa: E402
from tests.imap.dovecot import PASSWORD, USER, Dovecot, installed, make_certificate  # noqa: E402


def _config(folder: Path, server: Dovecot, *, idle: bool, poll: float) -> Path:
    settings: dict[str, Any] = yaml.safe_load((REPO / "config" / "postdesk.yaml").read_text()) or {}
    settings.setdefault("imap", {})["accounts"] = [{
        "name": "bench", "mailbox": "support@telenta.example", "host": "127.0.0.1", "port": server.port,
        "tls": "plain", "allow_plain": True, "user": USER, "password": PASSWORD, "folder": "INBOX",
        "after_import": "move", "move_to": "Imported", "idle": idle, "poll_interval": poll,
    }]
    path = folder / f"postdesk-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def measure(server: Dovecot, folder: Path, count: int, *, idle: bool, poll: float) -> list[float]:
    db = Database("sqlite", folder)
    sink = Sink().start()
    daemon = Daemon(db, sink, folder / f"daemon-{idle}.log",
                    env_extra={"POSTDESK_CONFIG": str(_config(folder, server, idle=idle, poll=poll)),
                               "POSTDESK_LOGGING__LEVEL": "WARNING"}).start()
    delays = []
    try:
        time.sleep(1.0)  # let the account connect and settle into IDLE or its poll rhythm
        for i in range(count):
            message_id = f"<bench-{uuid.uuid4().hex}@kund.example>"
            raw = make_mail(sender=f"imap-{i}@kund.example", subject=f"IMAP {i}", message_id=message_id)
            started = time.perf_counter()
            server.append("INBOX", raw)
            while not db.scalar("SELECT count(*) FROM message WHERE message_id = :m", m=message_id):
                if time.perf_counter() - started > poll * 3 + 30:
                    raise RuntimeError(f"message {i} not imported: {daemon.log()}")
                time.sleep(0.005)
            delays.append(time.perf_counter() - started)
    finally:
        daemon.stop()
        sink.stop()
        db.drop()
    return delays


def report(name: str, delays: list[float]) -> None:
    ordered = sorted(delays)
    print(f"{name:<28} median {statistics.median(ordered) * 1000:8.0f} ms   "
          f"p90 {ordered[int(0.9 * (len(ordered) - 1))] * 1000:8.0f} ms   max {ordered[-1] * 1000:8.0f} ms   (n={len(ordered)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args()
    if not installed():
        sys.exit("dovecot is not installed: apt-get install dovecot-imapd")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = Dovecot(*make_certificate(folder)).start()
        try:
            print(f"APPEND -> ticket stored, {args.messages} messages each, one at a time")
            report("IDLE (push)", measure(server, folder, args.messages, idle=True, poll=300))
            report(f"polling every {args.poll_interval:g} s (baseline)",
                   measure(server, folder, args.messages, idle=False, poll=args.poll_interval))
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
