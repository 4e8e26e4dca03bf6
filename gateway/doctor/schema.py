"""The database check: the store answers and carries the schema this code expects.

The revisions are read without Alembic (the migration files state them as literals, the store
records its own in `alembic_version`), so `doctor` and `route` learn "at head" without loading
it; Alembic is asked only when something is not as expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.doctor.finding import Finding

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.config import Config


def head_revision() -> str | None:
    """This version's newest schema revision, read from the migration files without Alembic.

    Each file states `revision` and `down_revision` as literals; the head is the one revision no
    other names as its parent. Loading Alembic to walk the same files costs a verb ~0.2 s; when a
    file states them otherwise, or the files do not name exactly one head, Alembic is asked.
    """
    from gateway.db import engine

    files = sorted((engine.MIGRATIONS / "versions").glob("*.py"))
    parents: dict[str, set[str]] = {}
    for path in files:
        names = _literals(path.read_text(encoding="utf-8"), ("revision", "down_revision"))
        revision, down = names.get("revision"), names.get("down_revision")
        if isinstance(revision, str):
            # One parent, a merge's tuple of parents, or None for the first revision.
            parents[revision] = {down} if isinstance(down, str) else (
                {str(d) for d in down} if isinstance(down, tuple | list) else set())
    heads = set(parents) - set[str]().union(*parents.values())
    if len(parents) == len(files) and len(heads) == 1:
        return heads.pop()
    return engine.head_revision()


def _literals(source: str, names: tuple[str, ...]) -> dict[str, object]:
    """Module-level `name = <literal>` assignments in `source` (a name set otherwise is left out)."""
    import ast

    found: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names:
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    return found


def current_revision(conn: Connection) -> str | None:
    """The revision the database's schema is at (None: no schema), read as Alembic records it."""
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("alembic_version"):
        return None
    versions = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
    # More than one row: branches applied separately, never the head this version expects.
    return ",".join(sorted(versions)) or None


def check_database(config: Config) -> Iterator[Finding]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

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
            current = current_revision(conn)
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
