"""The one clock: timezone-aware UTC now, for every layer from `mail/` to the CLI.

It lives at the bottom of the package so that the mail layer and the store can both read the
time without importing each other (before, `utcnow` lived in `db.models`, which made composing a
mail depend on the table definitions).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC, with its zone attached (never a naive datetime)."""
    return datetime.now(UTC)
