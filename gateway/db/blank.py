"""An empty store at this version's schema, in memory: what `postdesk route` uses without a database.

It is built from the Core tables (`gateway.db.tables`). Compiling and running their DDL costs a
verb about 30 ms, a twentieth of its start, so the finished database's image (SQLite's own
serialisation) is kept in a folder of this user's own in the temporary directory, named by what
decides its content: the tables file and the SQLAlchemy and SQLite versions. An image that is
missing, unreadable, not this user's or not a database only means building the store again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import tempfile
from pathlib import Path
from typing import cast

import sqlalchemy
from sqlalchemy import Engine

from gateway.db import tables
from gateway.db.engine import make_engine


def empty_store(folder: Path | None = None) -> Engine:
    """An in-memory SQLite engine (one connection) holding every table, empty."""
    engine = make_engine("sqlite://", pool_size=1)
    image = _image_path(folder or Path(tempfile.gettempdir()) / f"postdesk-{os.getuid()}")
    with engine.connect() as conn:
        raw = cast(sqlite3.Connection, conn.connection.dbapi_connection)
        data = _read(image)
        if data is not None and _load(raw, data):
            return engine
    if data is not None:  # whatever the damaged image left in the connection goes with it
        engine.dispose()
        engine = make_engine("sqlite://", pool_size=1)
    tables.METADATA.create_all(engine)
    with engine.connect() as conn:
        _keep(image, cast(sqlite3.Connection, conn.connection.dbapi_connection).serialize())
    return engine


def _image_path(folder: Path) -> Path:
    key = hashlib.sha256(Path(tables.__file__).read_bytes())
    key.update(f"{sqlalchemy.__version__} {sqlite3.sqlite_version}".encode())
    return folder / f"empty-store-{key.hexdigest()[:24]}.sqlite"


def _private(folder: Path) -> bool:
    """The folder is ours alone: nobody else could have put an image there."""
    try:
        info = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def _read(image: Path) -> bytes | None:
    if not _private(image.parent):
        return None
    try:
        return image.read_bytes()
    except OSError:
        return None


def _load(raw: sqlite3.Connection, data: bytes) -> bool:
    try:
        raw.deserialize(data)
        # A damaged image shows itself on the first read of the schema.
        raw.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        return False
    return True


def _keep(image: Path, data: bytes) -> None:
    try:
        image.parent.mkdir(mode=0o700, exist_ok=True)
        if not _private(image.parent):
            return
        # Written aside and renamed: a verb started meanwhile reads the old image or the new one.
        fd, name = tempfile.mkstemp(dir=image.parent, prefix=".image-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(name, image)
    except OSError:
        Path(name).unlink(missing_ok=True)
