"""How fast each `postdesk` verb answers: wall time per verb, median of N runs, in one table.

    python bench/cli.py [--runs 5] [--no-bytecode-cache] [--compare OTHER_CHECKOUT]

Builds a small scratch store with the real commands (SQLite under a temporary folder:
`postdesk migrate`, then `postdesk serve` long enough to turn a few injected mails into
tickets), then times each verb as a subprocess, baselines first in the same run: `python -c
pass` (the interpreter alone) and `postdesk --help` (click and the verb table). The 100 messages
of `route` are the first 100 `.eml` files of the shared corpus in name order.

Python's bytecode cache is written to a temporary folder (PYTHONPYCACHEPREFIX), as an installed
package has its modules compiled once; `--no-bytecode-cache` keeps the environment as it is
(with PYTHONDONTWRITEBYTECODE set, every run compiles the project's modules again). CPU seconds
are printed beside wall seconds: on a shared machine they are the steadier figure. `--compare`
times another checkout of Postdesk (e.g. `git archive main | tar -x -C /tmp/main`) on the same
store, its runs alternating with this one's, so that both columns see the same load. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
FIXTURE = REPO / "tests" / "fixtures" / "mail" / "headers_lost_indent.eml"
TICKETS = 3


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scratch_env(folder: Path, bytecode_cache: bool) -> dict[str, str]:
    """The settings of the scratch installation, as POSTDESK_* variables over the repo's file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    env.update({
        "POSTDESK_DATABASE__URL": f"sqlite:///{folder / 'postdesk.db'}",
        "POSTDESK_STORE_DIR": str(folder),
        "POSTDESK_SECRET": "bench-secret",
        "POSTDESK_SMTP__LISTEN": f"127.0.0.1:{_free_port()}",
        # Nothing listens there: confirmations stay pending, and doctor's relay check fails at once.
        "POSTDESK_RELAY__PORT": str(_free_port()),
        "POSTDESK_WEB__ENABLED": "false",
        "POSTDESK_METRICS__LISTEN": "",
        "POSTDESK_SCHEDULER__ENABLED": "false",
        "POSTDESK_PROCESSOR__POLL_INTERVAL": "0.1",
        "POSTDESK_LOGGING__LEVEL": "WARNING",
    })
    return env


def postdesk(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def _mail(number: int) -> bytes:
    return (f"From: Customer {number} <customer{number}@kund.example>\r\nTo: support@telenta.example\r\n"
            f"Subject: Bench ticket {number}\r\nMessage-ID: <bench-{number}@kund.example>\r\n"
            f"Date: Mon, 2 Mar 2026 10:0{number}:00 +0100\r\n\r\nThe alarm rings, number {number}.\r\n").encode()


def _tickets(database: Path) -> int:
    try:
        with sqlite3.connect(database) as conn:
            count: int = conn.execute("SELECT count(*) FROM ticket").fetchone()[0]
            return count
    except sqlite3.Error:
        return 0


def build_store(folder: Path, env: dict[str, str]) -> None:
    """Migrate, inject a few mails and let the daemon turn them into tickets."""
    subprocess.run(postdesk("migrate"), cwd=REPO, env=env, check=True, capture_output=True)
    for number in range(1, TICKETS + 1):
        subprocess.run(postdesk("inject", "--mailbox", "support@telenta.example"), cwd=REPO, env=env,
                       input=_mail(number), check=True, capture_output=True)
    with (folder / "serve.log").open("wb") as log:
        daemon = subprocess.Popen(postdesk("serve"), cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while _tickets(folder / "postdesk.db") < TICKETS:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the daemon made no tickets: {(folder / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.1)
    finally:
        daemon.terminate()
        daemon.wait(30)


def timed(args: Sequence[str], env: dict[str, str], repo: Path = REPO) -> Timing:
    """One run's wall time and the child's CPU time (user + system); `python -m` runs `repo`'s code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(list(args), cwd=repo, env=env, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # doctor exits 1 here (no relay listens): that is its answer, not a failure of the bench.
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return Timing(wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def medians(args: Sequence[str], env: dict[str, str], runs: int, repos: Sequence[Path]) -> list[Timing]:
    """The median run of `args` in each checkout, runs taken in turn (after one warm-up each)."""
    for repo in repos:
        timed(args, env, repo)  # warm-up: bytecode cache and page cache
    results: list[list[Timing]] = [[] for _ in repos]
    for _ in range(runs):
        for index, repo in enumerate(repos):
            results[index].append(timed(args, env, repo))
    return [Timing(statistics.median(t.wall for t in r), statistics.median(t.cpu for t in r)) for r in results]


def corpus_files(count: int) -> list[str]:
    files = sorted(CORPUS.rglob("*.eml"))[:count]
    if len(files) < count:
        raise SystemExit(f"{CORPUS}: {len(files)} .eml files, {count} wanted")
    return [str(path) for path in files]


def verbs(folder: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(label, command, settings over the scratch store's) of each verb timed."""
    hundred = corpus_files(100)
    # A rules author's case: no database at all (route then threads against an empty store).
    none = {"POSTDESK_DATABASE__URL": f"sqlite:///{folder / 'absent' / 'none.db'}"}
    return [
        ("python -c pass", [sys.executable, "-c", "pass"], {}),
        ("postdesk --help", postdesk("--help"), {}),
        ("route --json (1 file)", postdesk("route", "--json", str(FIXTURE)), {}),
        ("route --json (1, no database)", postdesk("route", "--json", str(FIXTURE)), none),
        ("route --json (100 files)", postdesk("route", "--json", *hundred), {}),
        ("route --mail-only (1 file)", postdesk("route", "--json", "--mail-only", str(FIXTURE)), {}),
        ("ticket show", postdesk("ticket", "show", "100000"), {}),
        ("doctor", postdesk("doctor", "--relay-timeout", "1"), {}),
        ("quarantine list", postdesk("quarantine", "list"), {}),
        ("outbox list", postdesk("outbox", "list", "--state", "all"), {}),
        ("customer set", postdesk("customer", "set", "customer1@kund.example", "--language", "sv"), {}),
        ("rules check", postdesk("rules", "check"), {}),
        ("migrate (at head)", postdesk("migrate"), {}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per verb (the median is printed)")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as set")
    parser.add_argument("--compare", type=Path, help="another checkout to time beside this one")
    options = parser.parse_args()
    repos = [REPO, *([options.compare.resolve()] if options.compare else [])]
    with tempfile.TemporaryDirectory(prefix="postdesk-bench-cli-") as tmp:
        env = scratch_env(Path(tmp), not options.no_bytecode_cache)
        build_store(Path(tmp), env)
        cache = "off (as the environment says)" if options.no_bytecode_cache else "on (temporary folder)"
        print(f"scratch store: SQLite, {TICKETS} tickets; bytecode cache {cache}; "
              f"load average {os.getloadavg()[0]:.2f}; median of {options.runs} runs")
        print(f"{'verb':<30}" + "".join(f" {'wall s':>7} {'CPU s':>7}  " for _ in repos)
              + ("  (this checkout, then " + str(options.compare) + ")" if options.compare else ""))
        for name, args, extra in verbs(Path(tmp)):
            results = medians(args, {**env, **extra}, options.runs, repos)
            print(f"{name:<30}" + "".join(f" {t.wall:>7.2f} {t.cpu:>7.2f}  " for t in results), flush=True)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
