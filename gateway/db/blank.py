"""An empty store at this version's schema, in memory: what `postdesk route` uses without a database.

It is built from the Core tables (`gateway.db.tables`). Compiling and running their DDL costs a
verb about 30 ms, a twentieth of its start, so the finished database's image (SQLite's own
serialisation) is kept between runs (`gateway.keep`), named by what decides its content: the
tables file and the SQLAlchemy and SQLite versions. An image that is missing, unreadable, kept
where others could write or not a database only means building the store again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

import sqlalchemy
from sqlalchemy import Engine

from gateway import keep
from gateway.db import tables
from gateway.db.engine import make_engine


def empty_store(folder: Path | None = None) -> Engine:
    """An in-memory SQLite engine (one connection) holding every table, empty."""
    engine = make_engine("sqlite://", pool_size=1)
    image = (folder or keep.folder()) / (keep.name("empty-store", Path(tables.__file__).read_bytes(),
                                                   sqlalchemy.__version__, sqlite3.sqlite_version) + ".sqlite")
    data = keep.read(image)
    if data is not None:
        with engine.connect() as conn:
            if _load(cast(sqlite3.Connection, conn.connection.dbapi_connection), data):
                return engine
        # Whatever the damaged image left in the connection goes with it.
        engine.dispose()
        engine = make_engine("sqlite://", pool_size=1)
    tables.METADATA.create_all(engine)
    with engine.connect() as conn:
        keep.write(image, cast(sqlite3.Connection, conn.connection.dbapi_connection).serialize())
    return engine


def _load(raw: sqlite3.Connection, data: bytes) -> bool:
    try:
        raw.deserialize(data)
        # A damaged image shows itself on the first read of the schema.
        raw.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        return False
    return True
