"""`gateway/db/tables.py` (Core, what every statement uses) is what the SQLModel models declare.

The file is written by `python -m gateway.db.mirror`; a model changed without running it again
fails the first test. The second compares the two sets of tables column by column, so that a
fault in the writer cannot make a copy that differs from the models in a way the text hides.
The models themselves are held to the Alembic head by test_models_drift.py. The last tests show
what the copy is for: the daemon and the verbs no longer import SQLModel, and the datetime type
that comes with it behaves as the models' own on both stores.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Index, MetaData, Table, UniqueConstraint, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError
from sqlmodel import SQLModel

from gateway.db import mirror, models, tables
from gateway.db.engine import make_engine
from gateway.db.normalise import BoundedText
from tests.conftest import BACKENDS, _require_backend
from tests.harness import Database

REPO = Path(__file__).resolve().parents[1]
DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


def test_tables_file_is_what_the_models_give() -> None:
    written = mirror.TARGET.read_text(encoding="utf-8")
    assert written == mirror.models_source(), "gateway/db/tables.py is stale: run python -m gateway.db.mirror"


def _default(column: Column[Any]) -> Any:
    default = column.default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    if getattr(default, "is_callable", False):
        function = getattr(arg, "__wrapped__", arg)
        return ("call", function.__module__, function.__qualname__)
    return ("value", type(arg).__name__, arg)


def _column(column: Column[Any]) -> dict[str, Any]:
    server = column.server_default
    return {
        "ddl": {name: column.type.compile(dialect=d) for name, d in DIALECTS.items()},
        "python": column.type.python_type.__name__,
        "bound": column.type.limit if isinstance(column.type, BoundedText) else "not bound",
        "nullable": column.nullable, "primary_key": column.primary_key,
        "foreign_keys": sorted(fk.target_fullname for fk in column.foreign_keys),
        "default": _default(column),
        "server_default": None if server is None else str(getattr(server, "arg", server)),
    }


def _table(table: Table) -> dict[str, Any]:
    return {
        "columns": [(column.name, _column(column)) for column in table.columns],
        "indexes": sorted((str(i.name), tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes
                          if isinstance(i, Index)),
        "unique": sorted((str(c.name), tuple(col.name for col in c.columns)) for c in table.constraints
                         if isinstance(c, UniqueConstraint)),
        "primary_key": [c.name for c in table.primary_key.columns],
    }


def _schema(metadata: MetaData) -> dict[str, Any]:
    return {name: _table(table) for name, table in metadata.tables.items()}


def test_core_tables_match_the_models_column_by_column() -> None:
    ours, models_ = _schema(tables.METADATA), _schema(SQLModel.metadata)
    assert list(ours) == list(models_)
    for name in models_:
        assert ours[name] == models_[name], f"table {name} differs from its model"
    # And every table has its constant, as the modules import it.
    assert {getattr(tables, constant).name for constant in mirror.CONSTANTS.values()} == set(models_)


def test_the_writer_refuses_what_it_cannot_copy() -> None:
    """A model feature the writer does not know must stop it, not be left out of the copy."""
    from sqlalchemy import Computed, Integer

    odd = MetaData()
    Table("customer", odd, Column("id", Integer, primary_key=True), Column("twice", Integer, Computed("id * 2")))
    with pytest.raises(ValueError, match="twice"):
        mirror.render(odd)


def test_the_daemon_and_the_verbs_load_without_sqlmodel_the_orm_or_postgresql() -> None:
    """What each start would pay for nothing: SQLModel and the ORM (no statement uses them), and on
    SQLite the PostgreSQL dialect with its drivers (loaded when a PostgreSQL statement is built)."""
    unused = "m.split('.')[0] == 'sqlmodel' or m.startswith(('sqlalchemy.orm', 'sqlalchemy.dialects.postgresql'))"
    code = ("import sys, gateway.daemon, gateway.process, gateway.dryrun, gateway.web, gateway.cli.route, "
            f"gateway.cli.ticket, gateway.doctor; print(sorted(m for m in sys.modules if {unused}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    _require_backend(request.param)
    db = Database(request.param, tmp_path)
    engine = make_engine(db.url)
    try:
        tables.METADATA.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        db.drop()


def test_times_go_in_with_their_offset_and_come_back_in_utc(store: Engine) -> None:
    stockholm = timezone(timedelta(hours=1))
    written = datetime(2026, 12, 1, 16, 30, tzinfo=stockholm)
    with store.begin() as conn:
        conn.execute(insert(tables.ONCE), {"key": "k", "created_at": written})
        back = conn.execute(select(tables.ONCE.c.created_at)).scalar_one()
        # The models' own type reads the same row to the same value.
        (model_back,) = conn.execute(select(models.Once.__table__.c.created_at)).one()  # type: ignore[attr-defined]
    assert back == written and back.tzinfo == UTC and back.hour == 15
    assert model_back == back


def test_a_time_without_its_offset_is_refused(store: Engine) -> None:
    with store.begin() as conn, pytest.raises(StatementError, match="offset"):
        conn.execute(insert(tables.ONCE), {"key": "naive", "created_at": datetime(2026, 12, 1, 16, 30)})
