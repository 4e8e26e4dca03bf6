"""A daemon with a test module's own config, on the module's backend, for tests of agents' mail.

Tests share one sink per module and run once per backend, so each backend numbers its tickets
apart (100000 on SQLite, 500000 on PostgreSQL): mail about one ticket is never taken for the
other's.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Daemon, Database, Sink

EVA = "eva@telenta.example"
ADMIN = "admin@telenta.example"


def config(language: str = "en", *, eva: str = "", more: str = "") -> str:
    """Eva (an agent of fire-national), an admin, no scheduler; `more` is further YAML (its
    leading `- {…}` lines are more agents)."""
    # Mail in one known language: these tests read its words (detection has tests of its own).
    return (f"tickets: {{language: {language}, detect_language: false, first_number: FIRST}}\nadmin_address: {ADMIN}\nagents:\n"
            f"- {{name: Eva Lind, address: {EVA}, departments: [fire-national], role: agent{eva}}}\n"
            f"{textwrap.dedent(more)}scheduler: {{enabled: false}}\n")


def start(backend: Database, sink: Sink, folder: Path, text: str) -> Daemon:
    path = folder / "postdesk.yaml"
    path.write_text(text.replace("FIRST", "100000" if backend.kind == "sqlite" else "500000"))
    return Daemon(backend, sink, folder / "daemon.log", env_extra={"POSTDESK_CONFIG": str(path)}).start()


def desk_fixture(name: str, text: str) -> Any:
    """A module-scoped `desk` fixture: the daemon with config `text`."""
    @pytest.fixture(scope="module")
    def desk(backend: Database, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
        proc = start(backend, sink, tmp_path_factory.mktemp(name), text)
        yield proc
        proc.stop()
    return desk


def desk_on_config_file() -> Any:
    """A module-scoped `desk` fixture: the daemon with the module's own `config_file` fixture."""
    @pytest.fixture(scope="module")
    def desk(backend: Database, sink: Sink, config_file: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
        proc = Daemon(backend, sink, tmp_path_factory.mktemp("log") / "daemon.log",
                      env_extra={"POSTDESK_CONFIG": str(config_file)}).start()
        yield proc
        proc.stop()
    return desk


@pytest.fixture
def duties(desk: Daemon) -> Iterator[Any]:
    """The scheduler's duties on the desk's database, for a test to run with a controlled clock."""
    from gateway.config import load_config
    from gateway.daemon import build_pipeline
    from gateway.db.engine import make_engine
    from gateway.scheduler import Duties

    config_file = Path(desk.env_extra["POSTDESK_CONFIG"])
    config = load_config(config_file, environ={
        "POSTDESK_DATABASE__URL": desk.db.url, "POSTDESK_SECRET": "x", "POSTDESK_WEB__BASE_URL": "http://desk.example",
        "POSTDESK_STORE_DIR": str(config_file.parent / "store"), "POSTDESK_SCHEDULER__DIGEST_TIME": "23:59",
        "POSTDESK_SCHEDULER__BACKUP_TIME": "23:59", "POSTDESK_SCHEDULER__TIMEZONE": "UTC"})
    pipeline = build_pipeline(config)
    engine = make_engine(config.database.url)
    yield Duties(engine, config, pipeline.notifier, lambda: pipeline.routing.current.directory)
    engine.dispose()
