"""The database check: the store answers and carries the schema this code expects.

The revisions are read by `gateway.db.engine` without Alembic (the migration files state them
as literals, the store records its own in `alembic_version`), so `doctor` learns "at head"
without loading it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.doctor.finding import Finding

if TYPE_CHECKING:
    from gateway.config import Config


def check_database(config: Config) -> Iterator[Finding]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from gateway.db.engine import head_revision, revision_of

    url = make_url(config.database.url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        # make_engine would create the file; a doctor only looks.
        database = Path(url.database or "")
        if not database.exists():
            yield Finding("database", False, f"{shown}: {database} does not exist yet",
                          "run `postdesk migrate` (or start `postdesk serve`, which creates it); check that "
                          f"{database.parent} is the intended folder and writable by the daemon's user")
            return
        engine = create_engine(config.database.url, connect_args={"timeout": 5})
    else:
        engine = create_engine(config.database.url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = revision_of(conn)
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        yield Finding("database", False, f"{shown}: cannot connect: {reason}",
                      "start the database server, or correct database.url (POSTDESK_DATABASE__URL): host, port, "
                      "user, password and database name")
        return
    finally:
        engine.dispose()
    yield from _schema_finding(shown, current, head_revision())


def _schema_finding(shown: str, current: str | None, head: str | None) -> Iterator[Finding]:
    if current == head:
        yield Finding("database", True, f"{shown}: connected; schema at revision {current} (current)")
        return
    if current is None:
        yield Finding("database", False, f"{shown}: connected, but no schema (empty database)",
                      "run `postdesk migrate` (or start `postdesk serve`, which migrates)")
        return
    from alembic.script import ScriptDirectory

    from gateway.db.engine import MIGRATIONS

    known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    if current in known:
        yield Finding("database", False, f"{shown}: schema at revision {current}, this version expects {head}",
                      "run `postdesk migrate` (back up first: `postdesk serve` would also migrate at start)")
        return
    yield Finding("database", False, f"{shown}: schema at revision {current}, unknown to this version "
                  f"(expects {head}): a newer Postdesk migrated it",
                  "upgrade this installation to the version the other daemons run")
