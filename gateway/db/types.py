"""Column types of the Core tables that SQLModel's own would otherwise bring in with all of SQLModel.

`gateway.db.tables` is read by every verb and by the daemon; importing SQLModel costs each of them
about 0.2 s (pydantic models, the ORM), while plain SQLAlchemy types cost nothing more. Only the
one type whose behaviour goes beyond its DDL needs a counterpart here: the models' datetime type,
which refuses naive datetimes on the way in and gives aware UTC ones on the way out (SQLite keeps
no offset). `tests/test_tables_mirror.py` checks that both behave alike on both stores.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import types
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.operators import OperatorType


class UTCDateTime(types.TypeDecorator[datetime]):
    """TIMESTAMP WITH TIME ZONE: aware datetimes in, UTC datetimes out."""

    impl = types.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:
        return "UTCDateTime()"

    def coerce_compared_value(self, op: OperatorType | None, value: Any) -> types.TypeEngine[Any]:
        # `column - interval` compares with an interval, not with a datetime.
        return types.Interval() if isinstance(value, timedelta) else self

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            # A naive time is ambiguous (local? UTC?): refuse it rather than store a guess.
            raise ValueError(f"a stored time must carry its offset: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite keeps the UTC time without its offset.
        return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
