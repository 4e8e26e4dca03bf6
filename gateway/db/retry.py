"""Which database errors are transient: worth trying again, never a reason to quarantine.

A deadlock or a serialization failure means another transaction won the race; a lost connection
or a locked SQLite file means the database was briefly away. None of them says anything about
the message being written, so the message goes back to the queue (with jitter) instead of to
quarantine.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import exc as sa_exc

# deadlock_detected, serialization_failure, lock_not_available, and the connection classes.
_TRANSIENT_STATES = {"40P01", "40001", "55P03", "57P01", "57P02", "57P03"}
_TRANSIENT_CLASSES = ("08",)
_SQLITE_BUSY = ("database is locked", "database table is locked")


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or one it was raised from) is a database hiccup rather than bad data."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_one(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_one(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (sa_exc.PendingRollbackError, sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True
    state = getattr(error, "sqlstate", None) or getattr(getattr(error, "orig", None), "sqlstate", None)
    if isinstance(state, str) and (state in _TRANSIENT_STATES or state.startswith(_TRANSIENT_CLASSES)):
        return True
    text = str(error)
    return isinstance(error, sa_exc.OperationalError) and any(busy in text for busy in _SQLITE_BUSY)


def jitter(base: float) -> timedelta:
    """A pause of about `base` seconds, spread so that two daemons do not collide again."""
    return timedelta(seconds=base * random.uniform(0.5, 1.5))
