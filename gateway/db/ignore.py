"""INSERT … ON CONFLICT DO NOTHING, alike on SQLite and PostgreSQL: rows two daemons may both write.

A customer, a participant, an attachment's content, a suppression or a once-only key may be
written by two transactions at the same time; the second insert must do nothing, not fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table

# Statements built once per dialect and table.
_IGNORING: dict[tuple[str, str], Any] = {}


def dialect_insert(dialect: str) -> Callable[[Table], Any]:
    """The INSERT construct of `dialect` that knows ON CONFLICT (PostgreSQL's, else SQLite's).

    Imported when first asked for: loading the PostgreSQL dialect (every driver it knows) costs
    a run on SQLite some 30 ms for nothing.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    """INSERT that does nothing when a unique key exists: two daemons may meet the same customer.

    Returns 1 when the row was inserted, 0 when it existed.
    """
    key = (conn.dialect.name, table.name)
    statement = _IGNORING.get(key)
    if statement is None:
        maker = dialect_insert(conn.dialect.name)
        # RETURNING tells whether the row went in; rowcount is -1 for this on psycopg.
        primary = list(table.primary_key.columns)[0]
        statement = _IGNORING[key] = maker(table).on_conflict_do_nothing().returning(primary)
    return len(conn.execute(statement, values).all())
