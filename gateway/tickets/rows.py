"""Typed views of the rows code reads: a ticket and a customer as selected from the store.

SQLAlchemy Core stays on the hot path: a `select(TICKET)` row is passed around as it is, and
these protocols say which columns it has and their types, so that the type checker sees each
attribute read (`ticket.status`, `ticket.mailbox`) instead of `Any`. A row of the table
matches them; so does any object with those attributes (a test's stand-in).
"""

from __future__ import annotations

from typing import Protocol

# One definition of each table's row, checked against the models by tests/test_models_drift.py.
from gateway.db.rows import CustomerRow as CustomerRow
from gateway.db.rows import TicketRow as TicketRow


class TicketKey(Protocol):
    """What names a ticket: a `TicketRow`, or the `TicketRef` of one just created."""

    @property
    def id(self) -> int: ...
    @property
    def number(self) -> int: ...
