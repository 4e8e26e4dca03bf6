"""Work read on a snapshot, checked under the write lock: the reads a transaction made, made again.

SQLite has one writer. A processor batch that routes its mail, renders and builds its answers
while it holds the write lock keeps intake's group commits (and so every SMTP 250) waiting for
most of its run. A batch can instead run on a read-only snapshot (`engine.sqlite_reader`),
holding back the rows it makes, while a `ReadSet` records every query it sends. Under the write
lock the same queries are sent again: when each returns exactly the rows it returned on the
snapshot, nothing the batch decided on has changed since (new rows included: a query that
found nothing and now finds a row differs), and what it holds can be written as it is. When one
differs, the batch's work is stale and it runs again under the lock.

This is validation by the whole read set, so it needs no list of what other writers may change;
the cost is the queries sent twice more, at the driver, which for a batch are a handful.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, event

# A query and its parameters as the driver was given them (positional; named as sorted pairs).
Query = tuple[str, tuple[Any, ...]]


def _reads(statement: str) -> bool:
    return statement.lstrip()[:6].upper() in ("SELECT", "WITH")


class ReadSet:
    """The queries of one transaction and what each returned."""

    def __init__(self) -> None:
        self._queries: dict[Query, Any] = {}
        self._seen: dict[Query, list[tuple[Any, ...]]] = {}

    def __len__(self) -> int:
        return len(self._queries)

    @contextmanager
    def recording(self, conn: Connection) -> Iterator[ReadSet]:
        """Record the queries sent on `conn` inside the block; on leaving it (still inside the
        snapshot's transaction) make each again and keep what it returns."""

        def record(_conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any,
                   executemany: bool) -> None:
            if not executemany and _reads(statement):
                frozen = tuple(sorted(parameters.items())) if isinstance(parameters, dict) else tuple(parameters or ())
                self._queries[(statement, frozen)] = parameters

        event.listen(conn, "after_cursor_execute", record)
        try:
            yield self
        finally:
            event.remove(conn, "after_cursor_execute", record)
        self._seen = self._results(conn)

    def unchanged(self, conn: Connection) -> bool:
        """Whether every recorded query returns on `conn` what it returned on the snapshot."""
        return self._results(conn) == self._seen

    def _results(self, conn: Connection) -> dict[Query, list[tuple[Any, ...]]]:
        # At the driver: the statements are already compiled, and raw rows compare exactly.
        driver = conn.connection.dbapi_connection
        assert driver is not None
        results: dict[Query, list[tuple[Any, ...]]] = {}
        for query, parameters in self._queries.items():
            cursor = driver.cursor()
            try:
                cursor.execute(query[0], parameters or ())
                results[query] = [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        return results

