"""The outbox's SMTP client alone: CPU per mail of one session sending to a bare aiosmtpd server.

Postdesk's `gateway.outbox._transaction` (MAIL, RCPT and DATA under one deadline per mail) next
to aiosmtplib's `sendmail` with its per-command timeouts (the baseline) on the same session and
mail, rounds alternating. The server runs in its own process, so the CPU counted is the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiosmtplib  # noqa: E402

from bench.ingest import SINK_SCRIPT  # noqa: E402  (the bare aiosmtpd server of every bench)
from gateway.outbox import _transaction  # noqa: E402
from tests.harness import free_port  # noqa: E402

MAIL = (b"From: Postdesk <support@telenta.example>\r\nTo: kund@kund.example\r\nSubject: [#100001] Tack\r\n"
        b"Message-ID: <bench@postdesk.telenta.example>\r\n\r\n" + b"Vi har tagit emot ditt meddelande.\r\n" * 30)


async def _round(port: int, way: str, mails: int) -> float:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    await client.connect()
    await client.ehlo()
    row: Any = SimpleNamespace(id=1, mail_from="support@telenta.example", rcpt_to="kund@kund.example", raw=MAIL)
    started = time.process_time()
    for _ in range(mails):
        if way == "sendmail":
            await client.sendmail(row.mail_from, [row.rcpt_to], row.raw)
        else:
            await _transaction(client, row, 30)
    spent = time.process_time() - started
    await client.quit()
    return spent / mails * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=3000, help="mails per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SINK_SCRIPT, str(port)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        found: dict[str, list[float]] = {"sendmail": [], "postdesk": []}
        for _ in range(args.rounds):
            for way in found:
                found[way].append(asyncio.run(_round(port, way, args.mails)))
        for way, label in (("sendmail", "aiosmtplib sendmail (baseline)"), ("postdesk", "outbox _transaction")):
            figures = ", ".join(f"{ms:.3f}" for ms in found[way])
            print(f"{label:32} CPU per mail {min(found[way]):.3f} ms (best of {args.rounds}: {figures})")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
