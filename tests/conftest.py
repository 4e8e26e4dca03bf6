"""Fixtures: an SMTP sink, a database per backend (SQLite and PostgreSQL), and a running daemon."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import CORPUS, Daemon, Database, Sink, pg_available

BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    Path(__file__).with_name("artifacts").mkdir(exist_ok=True)


def _require_backend(kind: str) -> None:
    if kind == "postgresql" and not pg_available():
        if os.environ.get("POSTDESK_TEST_REQUIRE_PG"):
            pytest.fail("PostgreSQL is required (POSTDESK_TEST_REQUIRE_PG) but 127.0.0.1:5432 does not answer")
        pytest.skip("PostgreSQL server at 127.0.0.1:5432 not reachable")


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    _require_backend(request.param)
    db = Database(request.param, tmp_path_factory.mktemp("db"))
    yield db
    db.drop()


@pytest.fixture(scope="module")
def daemon(backend: Database, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    proc = Daemon(backend, sink, tmp_path_factory.mktemp("log") / "daemon.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of the kind named by the test's `kind` parameter, for tests that own a daemon."""
    kind = request.param
    _require_backend(kind)
    db = Database(kind, tmp_path)
    yield db
    db.drop()
