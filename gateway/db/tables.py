"""The SQLAlchemy Core table of each model, for the code that skips the ORM on hot paths.

The tables are taken from `SQLModel.metadata`, which is typed: `Model.__table__` is not declared
on SQLModel classes, so reading it there would need a cast or an ignore in every module that
writes prebuilt statements. Importing `gateway.db.models` registers every table first.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import Row, Table
from sqlmodel import SQLModel

from gateway.db import models  # noqa: F401  (registers the tables on SQLModel.metadata)

_TABLES = SQLModel.metadata.tables

CUSTOMER: Table = _TABLES["customer"]
TICKET: Table = _TABLES["ticket"]
PARTICIPANT: Table = _TABLES["participant"]
MESSAGE: Table = _TABLES["message"]
INBOUND: Table = _TABLES["inbound"]
OUTBOX: Table = _TABLES["outbox"]
QUARANTINE: Table = _TABLES["quarantine"]
EVENT: Table = _TABLES["ticketevent"]
ATTACHMENT: Table = _TABLES["attachment"]
MESSAGE_ATTACHMENT: Table = _TABLES["messageattachment"]
SUPPRESSION: Table = _TABLES["suppression"]
BOUNCE: Table = _TABLES["bounce"]
BUDGET: Table = _TABLES["budget"]
RATING: Table = _TABLES["rating"]
ONCE: Table = _TABLES["once"]
SIGNIN_HIT: Table = _TABLES["signinhit"]
IMAP_STATE: Table = _TABLES["imapstate"]
IMAP_SEEN: Table = _TABLES["imapseen"]

# A row of any select over these tables, whatever its columns: SQLAlchemy types a row by the
# tuple of its column types, so `Row[Any]` would mean a row of exactly one column.
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
