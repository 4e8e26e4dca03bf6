"""A daemon with a test's own config, on the module's backend, for the tests of agents' mail.

Tests share one sink per module and run once per backend, so each backend numbers its tickets
apart (100000 on SQLite, 500000 on PostgreSQL): mail about one ticket is never taken for the
other's. The config text says `FIRST` where the first number goes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.harness import Daemon, Database, Sink


def start(backend: Database, sink: Sink, folder: Path, config: str) -> Daemon:
    path = folder / "postdesk.yaml"
    path.write_text(textwrap.dedent(config).replace("FIRST", "100000" if backend.kind == "sqlite" else "500000"))
    return Daemon(backend, sink, folder / "daemon.log", env_extra={"POSTDESK_CONFIG": str(path)}).start()
