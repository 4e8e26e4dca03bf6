"""The SQLModel tables and the Alembic head describe the same schema, on SQLite and PostgreSQL.

A column, index, constraint or type added to `gateway/db/models.py` without a migration (or a
migration without its model change) shows up here as a difference between the metadata and a
database freshly migrated to the head, as Alembic's autogenerate would see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, ForeignKeyConstraint
from sqlmodel import SQLModel

from gateway.db import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from gateway.db.engine import head_revision, make_engine, upgrade
from tests.conftest import BACKENDS, _require_backend
from tests.harness import Database


@pytest.fixture(params=BACKENDS)
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    kind: str = request.param
    _require_backend(kind)
    db = Database(kind, tmp_path)
    engine = make_engine(db.url)
    try:
        upgrade(engine)
        yield kind, engine
    finally:
        engine.dispose()
        db.drop()


def _known_on_sqlite(diff: Any) -> bool:
    """Migration 0002 adds ticket.linked_ticket_id's foreign key on PostgreSQL only: SQLite cannot
    add a constraint to an existing table without rebuilding it. That one difference is meant."""
    if not (isinstance(diff, tuple) and diff[0] == "add_fk"):
        return False
    constraint = diff[1]
    return (isinstance(constraint, ForeignKeyConstraint) and constraint.table.name == "ticket"
            and [column.name for column in constraint.columns] == ["linked_ticket_id"])


def test_models_match_the_alembic_head(migrated: tuple[str, Engine]) -> None:
    kind, engine = migrated
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == head_revision()
        differences = compare_metadata(context, SQLModel.metadata)
    if kind == "sqlite":
        differences = [diff for diff in differences if not _known_on_sqlite(diff)]
    assert differences == [], f"models and migrations differ on {kind}: {differences}"
