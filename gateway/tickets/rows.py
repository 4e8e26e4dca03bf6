"""What names a ticket, for actions that need only its id and number.

The rows themselves are typed once, in `gateway.db.rows` (checked against the models by
tests/test_models_drift.py); a `TicketRow` and the `TicketRef` of a ticket just created both
meet `TicketKey`.
"""

from __future__ import annotations

from typing import Protocol


class TicketKey(Protocol):
    """What names a ticket: a `TicketRow`, or the `TicketRef` of one just created."""

    @property
    def id(self) -> int: ...
    @property
    def number(self) -> int: ...
