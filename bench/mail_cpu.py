"""CPU per message of the processor's prepare work in `gateway.mail`: parse, then classify.

    python bench/mail_cpu.py [--rounds N]

Over the shared corpus: the whole messages (sisimai bounces, the autoreply set, CPython's MIME
cases) and a person's mail built from every reply fixture (crisp_reply, email_reply_parser)
with ordinary headers, the mail a helpdesk mostly receives. Each message is parsed as the
processor parses it (`parse_bounded` with the default caps) and classified twice: without an
envelope (IMAP, a pipe) and with its Return-Path as the SMTP envelope. Figures are process CPU
time per message, the best of N rounds; nothing passes or fails.
"""

from __future__ import annotations

import argparse
import email.utils
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from gateway.mail.classify import classify
from gateway.mail.limits import Limits, parse_bounded
from gateway.mail.parse import ParsedMail

T = TypeVar("T")
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PERSON = ("From: Anna Berg <anna.berg@kund.example.se>\r\nTo: support@telenta.example\r\n"
          "Subject: Re: Order 4711\r\nMessage-ID: <{n}@kund.example.se>\r\nDate: {date}\r\n"
          "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")


def message_sets() -> dict[str, list[bytes]]:
    def files(folder: str) -> list[bytes]:
        paths = sorted(p for p in (CORPUS / folder).rglob("*") if p.is_file() and p.suffix not in (".json", ".md"))
        return [p.read_bytes() for p in paths]

    date = email.utils.formatdate(0)
    bodies = [p.read_bytes() for folder in ("crisp_reply", "email_reply_parser")
              for p in sorted((CORPUS / folder).rglob("*.txt"))]
    person = [PERSON.format(n=n, date=date).encode() + body for n, body in enumerate(bodies)]
    return {"sisimai_bounces": files("sisimai_bounces"), "autoreply": files("autoreply"),
            "cpython_email": files("cpython_email"), "person (reply fixtures)": person}


def best(rounds: int, items: Sequence[T], work: Callable[[T], object]) -> float:
    """The least process CPU time, over `rounds`, of `work` on every item."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        for item in items:
            work(item)
        times.append(time.process_time() - started)
    return min(times)


def envelope(mail: ParsedMail) -> str | None:
    value = mail.message.get("Return-Path")
    return None if value is None else str(value).strip().strip("<>")


def measure(raws: list[bytes], rounds: int) -> tuple[float, float, float]:
    """(parse, classify without envelope, classify with Return-Path as envelope) in µs per message."""
    limits = Limits()
    mails = [parse_bounded(raw, limits)[0] for raw in raws]
    parse = best(rounds, raws, lambda raw: parse_bounded(raw, limits))
    bare = best(rounds, mails, lambda m: classify(m.message, mail_from=None))
    smtp = best(rounds, mails, lambda m: classify(m.message, mail_from=envelope(m)))
    return 1e6 * parse / len(raws), 1e6 * bare / len(raws), 1e6 * smtp / len(raws)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--rounds", type=int, default=5)
    rounds = options.parse_args().rounds
    print(f"{'set':<26} {'mails':>5} {'parse µs':>9} {'classify µs':>12} {'with envelope µs':>17}")
    total: list[bytes] = []
    for name, raws in message_sets().items():
        total += raws
        parse, bare, smtp = measure(raws, rounds)
        print(f"{name:<26} {len(raws):>5} {parse:>9.0f} {bare:>12.0f} {smtp:>17.0f}")
    parse, bare, smtp = measure(total, rounds)
    print(f"{'all':<26} {len(total):>5} {parse:>9.0f} {bare:>12.0f} {smtp:>17.0f}")


if __name__ == "__main__":
    main()
