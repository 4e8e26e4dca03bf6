"""The empty in-memory store `postdesk route` uses without a database (gateway.db.blank).

Its image is kept between runs; the store made from the image must be the one the Core tables
make, and an image that is damaged or lies in a folder others can write must never be used.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, text

from gateway.db.blank import empty_store
from gateway.db.engine import make_engine
from gateway.db.tables import METADATA


def _schema(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                                 "ORDER BY type, name"))
        return [(kind, name, sql or "") for kind, name, sql in rows]


def _built() -> list[tuple[str, str, str]]:
    engine = make_engine("sqlite://", pool_size=1)
    METADATA.create_all(engine)
    try:
        return _schema(engine)
    finally:
        engine.dispose()


def _images(folder: Path) -> list[Path]:
    return sorted(folder.glob("empty-store-*.sqlite"))


def test_the_store_from_the_kept_image_is_the_one_the_tables_make(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    first = empty_store(folder)
    (image,) = _images(folder)
    assert folder.stat().st_mode & 0o777 == 0o700
    # The second store comes from the image: mark the image and see the mark come back.
    first.dispose()
    with closing(sqlite3.connect(image)) as marked:
        marked.execute("PRAGMA user_version = 4242")
        marked.commit()
    second = empty_store(folder)
    with second.connect() as conn:
        assert conn.execute(text("PRAGMA user_version")).scalar() == 4242
    assert _schema(second) == _built()
    # Empty and writable, with the foreign keys the daemon's engine turns on.
    with second.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM ticket")).scalar() == 0
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    second.dispose()


def test_a_damaged_image_is_built_again(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    empty_store(folder).dispose()
    (image,) = _images(folder)
    image.write_bytes(b"not a database" * 100)
    store = empty_store(folder)
    assert _schema(store) == _built()
    store.dispose()
    assert image.read_bytes().startswith(b"SQLite format 3\x00")


def test_an_image_in_a_folder_others_can_write_is_not_used(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    empty_store(folder).dispose()
    (image,) = _images(folder)
    with closing(sqlite3.connect(image)) as planted:
        planted.execute("CREATE TABLE planted (x INTEGER)")
        planted.commit()
    os.chmod(folder, 0o777)
    store = empty_store(folder)
    assert "planted" not in {name for _kind, name, _sql in _schema(store)}
    assert _schema(store) == _built()
    store.dispose()
