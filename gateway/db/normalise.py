"""Text values bound for the database, made the same for SQLite and PostgreSQL.

SQLite stores a NUL in text and ignores VARCHAR lengths; PostgreSQL refuses both, and a refusal
there fails the whole transaction, that is everyone's mail in the batch. Every string column
therefore gets a bind step that removes NUL characters and cuts the value to the column's
length, so that both stores keep exactly the same text and neither refuses it. Values are cut
by characters, which is how both count VARCHAR lengths. Message-IDs too long for a header line
or an index entry get a stable stand-in (`storable_message_id`).
"""

from __future__ import annotations

import hashlib
import re
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy import MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# Longest Message-ID kept as it is: well inside a header line (998) and a PostgreSQL index entry.
MAX_MESSAGE_ID = 900
_UNPRINTABLE = re.compile(r"[\x00-\x20\x7f]")
_MSGID = re.compile(r"<[^<>\s]+>")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def storable_message_id(value: str) -> str:
    """`value` itself, or for an over-long or control-laden id a short stable stand-in.

    The stand-in is a hash of the id, so every mail that refers to it (In-Reply-To, References)
    maps to the same one and still threads.
    """
    encoded = value.encode("utf-8", "surrogateescape")
    if len(encoded) <= MAX_MESSAGE_ID and not _UNPRINTABLE.search(value) and value.isprintable():
        return value
    return f"<{hashlib.sha256(encoded).hexdigest()[:40]}@shortened.invalid>"


def raw_message_id(raw: bytes) -> str:
    """The Message-ID of raw mail as the processor will store it; "" when it has none."""
    head = _HEAD_END.split(raw, maxsplit=1)[0]
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n").get("Message-ID")
    except Exception:  # a header block the parser cannot read: no id to wait for
        return ""
    found = _MSGID.findall(str(value or ""))
    return storable_message_id(found[0]) if found else ""


class BoundedText(TypeDecorator[str]):
    """A string column's own type, with NUL removed and the length enforced on the way in."""

    # Declared as TypeDecorator declares it: each instance sets the column's own type below.
    impl: TypeEngine[Any] | type[TypeEngine[Any]] = String
    cache_ok = True

    def __init__(self, original: TypeEngine[Any]) -> None:
        super().__init__()
        # The column's own type underneath: its DDL and result handling stay as they were.
        self.impl = original
        self.limit: int | None = getattr(original, "length", None)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return self.impl_instance

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if not isinstance(value, str):
            return value
        if "\x00" in value:
            value = value.replace("\x00", "")
        if self.limit is not None and len(value) > self.limit:
            value = value[: self.limit]
        return value


def as_stored(column: Any, value: Any, dialect: Dialect) -> Any:
    """`value` as a string column keeps it (NUL removed, cut to its length): what reading it
    back would give, without reading it back."""
    kind = column.type
    return kind.process_bind_param(value, dialect) if isinstance(kind, BoundedText) else value


def bound_text_columns(metadata: MetaData) -> None:
    """Wrap the type of every string column of `metadata` (run once, before statements are built)."""
    for table in metadata.tables.values():
        for column in table.columns:
            kind = column.type
            if isinstance(kind, BoundedText):
                continue
            # SQLModel's str type is a decorator over String: bind the String it decorates.
            if isinstance(kind, TypeDecorator) and isinstance(kind.impl_instance, String):
                kind = kind.impl_instance
            if isinstance(kind, (String, Text)):
                column.type = BoundedText(kind)
