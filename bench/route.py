"""`postdesk route` speed: start-up for one message, and 100 messages in one process.

    python bench/route.py

Runs the real command as a subprocess, with `--mail-only` (no settings, database or rules)
and with the full dry run against an empty SQLite database (rules, threading, the mail that
would be sent). The 100 messages are the shared corpus's whole messages (cpython_email,
sisimai_bounces, autoreply), first 100 in name order. Baseline in the same run: `python -c
pass`, the interpreter alone. Prints figures; passes nothing.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): on a shared machine the second is steadier."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _best(args: list[str], env: dict[str, str], runs: int = 5) -> str:
    results = [_timed(args, env) for _ in range(runs)]
    return f"{min(w for w, _ in results):.2f} s wall, {min(c for _, c in results):.2f} s CPU (best of {runs})"


def main() -> None:
    folders = ("cpython_email", "sisimai_bounces", "autoreply")
    files = sorted(p for f in folders for p in (CORPUS / f).rglob("*") if p.is_file() and p.suffix not in (".json", ".md"))
    with tempfile.TemporaryDirectory() as tmp:
        hundred = Path(tmp) / "hundred"
        hundred.mkdir()
        for index, path in enumerate(files[:100]):
            shutil.copy(path, hundred / f"{index:03d}.eml")
        env = {**os.environ, "POSTDESK_DATABASE__URL": f"sqlite:///{tmp}/bench.db"}
        route = [sys.executable, "-m", "gateway", "route", "--json"]
        one = str(hundred / "000.eml")
        # The normal case: a database at the current schema (else route migrates an in-memory one).
        subprocess.run([sys.executable, "-m", "gateway", "migrate"], cwd=REPO, env=env, check=True, capture_output=True)
        print(f"interpreter alone:                   {_best([sys.executable, '-c', 'pass'], env)}")
        print(f"route --mail-only, 1 message:        {_best([*route, '--mail-only', one], env)}")
        print(f"route --mail-only, 100 messages:     {_best([*route, '--mail-only', str(hundred)], env, 3)}")
        print(f"route (full dry run), 1 message:     {_best([*route, one], env, 3)}")
        print(f"route (full dry run), 100 messages:  {_best([*route, str(hundred)], env, 3)}")


if __name__ == "__main__":
    main()
