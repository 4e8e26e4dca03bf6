"""The SQLModel tables and the Alembic head describe the same schema, on SQLite and PostgreSQL;
the typed rows of `gateway.db.rows` list the same columns as the models, with the same types.

A column, index, constraint or type added to `gateway/db/models.py` without a migration (or a
migration without its model change) shows up here as a difference between the metadata and a
database freshly migrated to the head, as Alembic's autogenerate would see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, ForeignKeyConstraint
from sqlmodel import SQLModel

from gateway.db import models, rows
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


# Nullable in the table only for the moment between INSERT and numbering, inside the creating
# transaction (gateway.tickets.store): a committed ticket always has its number.
NUMBERED_WHEN_STORED = {("ticket", "number")}


def _stored(annotation: Any, column: Column[Any]) -> Any:
    """The Python type a stored row has in `column`: the model's, without None for a primary key
    (or a column that is set before the row is committed)."""
    never_null = column.primary_key or (column.table.name, column.name) in NUMBERED_WHEN_STORED
    if never_null and get_origin(annotation) in (UnionType, Union):
        kept = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(kept) == 1:
            return kept[0]
    return annotation


@pytest.mark.parametrize(("protocol", "model"), [
    (rows.CustomerRow, models.Customer),
    (rows.TicketRow, models.Ticket),
    (rows.MessageRow, models.Message),
    (rows.InboundRow, models.Inbound),
    (rows.OutboxRow, models.Outbox),
])
def test_typed_rows_list_their_model_columns_with_its_types(protocol: type, model: type[SQLModel]) -> None:
    table = SQLModel.metadata.tables[str(model.__tablename__)]
    expected = {column.name: _stored(model.model_fields[column.name].annotation, column) for column in table.columns}
    assert get_type_hints(protocol) == expected
