"""The scheduler's duties over a test daemon's database, run with a controlled clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.harness import Daemon


@contextmanager
def duties_for(desk: Daemon, config_file: Path, **environ: str) -> Iterator[Any]:
    """`Duties` on `desk`'s database and config; daily duties at 23:59 unless `environ` says otherwise."""
    from gateway.config import load_config
    from gateway.daemon import build_pipeline
    from gateway.db.engine import make_engine
    from gateway.scheduler import Duties

    config = load_config(config_file, environ={"POSTDESK_DATABASE__URL": desk.db.url, "POSTDESK_SECRET": "x",
                                                "POSTDESK_STORE_DIR": str(config_file.parent / "store"),
                                                "POSTDESK_SCHEDULER__DIGEST_TIME": "23:59",
                                                "POSTDESK_SCHEDULER__BACKUP_TIME": "23:59", **environ})
    pipeline = build_pipeline(config)
    engine = make_engine(config.database.url)
    try:
        yield Duties(engine, config, pipeline.notifier, lambda: pipeline.routing.current.directory)
    finally:
        engine.dispose()


def when(value: Any) -> datetime:
    """A timestamp read with plain SQL: SQLite gives text, PostgreSQL an aware datetime."""
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def created_at(desk: Daemon, number: int) -> datetime:
    return when(desk.db.scalar("SELECT created_at FROM ticket WHERE number = :n", n=number))
