"""Ticket statuses, the transitions between them, and the event log they are recorded in.

This module owns the vocabulary of the ticket lifecycle (DESIGN.md §3): which statuses exist,
which status may follow which, what each status is called in the customers' languages, in which
statuses the SLA clock runs, and the shape of one entry of a ticket's event log. It is pure
logic: no database, no mail. The SLA clocks themselves live in `gateway.tickets.sla`, which
replays the event log defined here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "ALLOWED",
    "DONE",
    "RUNNING",
    "WAITING",
    "Event",
    "InvalidTransition",
    "Kind",
    "Status",
    "check_transition",
    "clock_runs",
    "display_name",
    "is_reopen",
    "status_history",
]


class Status(StrEnum):
    """Where a ticket stands; the values are what the database and the config files hold."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    WAITING_THIRD_PARTY = "waiting_third_party"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Kind(StrEnum):
    """What an event records. `Event.kind` is a plain string, so other kinds may be logged too."""

    CREATED = "created"
    STATUS = "status"
    ASSIGNED = "assigned"
    FIRST_RESPONSE = "first_response"
    NOTE = "note"


# The statuses in which the SLA clock runs: nobody is waiting on anyone but support.
RUNNING: frozenset[Status] = frozenset({Status.NEW, Status.IN_PROGRESS})
# The statuses in which the clock is paused: support waits on the customer or a third party.
WAITING: frozenset[Status] = frozenset({Status.WAITING_CUSTOMER, Status.WAITING_THIRD_PARTY})
# The statuses in which the work is done and the clock is stopped.
DONE: frozenset[Status] = frozenset({Status.RESOLVED, Status.CLOSED})

_S = Status

# The transition table. A status never "moves" to itself: such a request is a no-op for the
# caller to skip, not a transition to record. Nothing leaves `closed` (the Tecnet seed: a closed
# request cannot be reopened; a new request starts a new flow).
ALLOWED: Mapping[Status, frozenset[Status]] = MappingProxyType(
    {
        _S.NEW: frozenset(
            {_S.IN_PROGRESS, _S.WAITING_CUSTOMER, _S.WAITING_THIRD_PARTY, _S.RESOLVED, _S.CLOSED}
        ),
        _S.IN_PROGRESS: frozenset(
            {_S.WAITING_CUSTOMER, _S.WAITING_THIRD_PARTY, _S.RESOLVED, _S.CLOSED}
        ),
        _S.WAITING_CUSTOMER: frozenset(
            {_S.IN_PROGRESS, _S.WAITING_THIRD_PARTY, _S.RESOLVED, _S.CLOSED}
        ),
        _S.WAITING_THIRD_PARTY: frozenset(
            {_S.IN_PROGRESS, _S.WAITING_CUSTOMER, _S.RESOLVED, _S.CLOSED}
        ),
        _S.RESOLVED: frozenset({_S.IN_PROGRESS, _S.CLOSED}),
        _S.CLOSED: frozenset(),
    }
)

# Listing order for messages, so an error reads the same on every run.
_ORDER: tuple[Status, ...] = tuple(Status)


class InvalidTransition(ValueError):
    """A requested status change that the transition table does not allow."""

    def __init__(self, current: Status, target: Status) -> None:
        self.current = current
        self.target = target
        self.allowed = ALLOWED[current]
        if self.allowed:
            targets = ", ".join(s.value for s in _ORDER if s in self.allowed)
            hint = f"allowed from {current.value}: {targets}"
        elif current is Status.CLOSED:
            hint = "allowed from closed: nothing (closed is final; a new ticket must be opened)"
        else:
            hint = f"allowed from {current.value}: nothing"
        super().__init__(
            f"cannot change ticket status from {current.value} to {target.value}; {hint}"
        )


def check_transition(current: Status, target: Status) -> None:
    """Raise `InvalidTransition` unless a ticket in `current` may move to `target`."""
    if target not in ALLOWED[current]:
        raise InvalidTransition(current, target)


def is_reopen(current: Status, target: Status) -> bool:
    """True when the change takes a resolved ticket back into work (the customer replied)."""
    return current is Status.RESOLVED and target is Status.IN_PROGRESS


def clock_runs(status: Status) -> bool:
    """True in the statuses where the SLA clock runs (business hours permitting)."""
    return status in RUNNING


_NAMES: Mapping[str, Mapping[Status, str]] = MappingProxyType(
    {
        "en": {
            _S.NEW: "Waiting for support",
            _S.IN_PROGRESS: "In progress",
            _S.WAITING_CUSTOMER: "Waiting for customer",
            _S.WAITING_THIRD_PARTY: "Waiting for third party",
            _S.RESOLVED: "Resolved",
            _S.CLOSED: "Closed",
        },
        "sv": {
            _S.NEW: "Väntar på support",
            _S.IN_PROGRESS: "Pågår",
            _S.WAITING_CUSTOMER: "Väntar på kund",
            _S.WAITING_THIRD_PARTY: "Väntar på tredje part",
            _S.RESOLVED: "Löst",
            _S.CLOSED: "Stängd",
        },
        # The Romanian names are the ones the Tecnet helpdesk shows its customers.
        "ro": {
            _S.NEW: "În așteptare departament support",
            _S.IN_PROGRESS: "În lucru",
            _S.WAITING_CUSTOMER: "În așteptare client",
            _S.WAITING_THIRD_PARTY: "În așteptare terță parte",
            _S.RESOLVED: "Rezolvat",
            _S.CLOSED: "Închis",
        },
    }
)


def display_name(status: Status, lang: str) -> str:
    """The name customers read for `status` in `lang` ("sv", "ro-RO", "sv_SE"...), else English."""
    # A customer's language comes from headers and profiles in many spellings; only the primary
    # subtag decides, and an unknown language gets English rather than an error in a mail.
    primary = lang.replace("_", "-").split("-", 1)[0].strip().lower()
    return _NAMES.get(primary, _NAMES["en"])[status]


@dataclass(frozen=True)
class Event:
    """One entry of a ticket's event log; the log, not a stored counter, is the truth.

    `status` is the ticket's status after the event, and is required for the kinds "created"
    and "status". `at` must be timezone-aware; it is kept in UTC.
    """

    at: datetime
    kind: str
    status: Status | None = None
    actor: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"event {self.kind!r}: 'at' must be timezone-aware, got {self.at}")
        if not self.kind:
            raise ValueError("event: 'kind' must not be empty")
        # Normalising here means every consumer compares and subtracts UTC instants, so wall-clock
        # arithmetic across a DST change cannot creep in.
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        if self.status is not None and not isinstance(self.status, Status):
            object.__setattr__(self, "status", Status(self.status))
        if self.kind in (Kind.CREATED, Kind.STATUS) and self.status is None:
            raise ValueError(f"event {self.kind!r} at {self.at}: 'status' is required")


def status_history(events: Iterable[Event]) -> list[tuple[datetime, Status]]:
    """The (since, status) steps of a ticket, oldest first, from its "created" event on.

    Events are ordered by time; events with the same time keep their log order. Status events
    that repeat the current status are dropped, so every step is a real change.
    """
    ordered = sorted(events, key=lambda e: e.at)
    steps: list[tuple[datetime, Status]] = []
    for event in ordered:
        if event.kind == Kind.CREATED:
            if steps:
                raise ValueError(f"event log: a second 'created' event at {event.at}")
        elif event.kind != Kind.STATUS:
            continue
        elif not steps:
            raise ValueError(f"event log: status event at {event.at} before 'created'")
        assert event.status is not None
        if not steps or steps[-1][1] is not event.status:
            steps.append((event.at, event.status))
    if not steps:
        raise ValueError("event log: no 'created' event")
    return steps
