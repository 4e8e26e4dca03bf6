"""SLA plans and the clocks of one ticket, recomputed from its event log.

This module owns `SlaPlan` (the targets a ticket is held to) and `compute_clocks` (where each
target stands at a given instant); `gateway.tickets.explain` says why a due time is what it is. Nothing here stores a
counter: the clocks are a pure function of the event log, the plan, the business calendar and
"now", so a sweep can run any number of times, on any instance, after any restart, and agree.

The rules, from DESIGN.md §3 and the Tecnet seed:

- a clock runs only while the ticket is `new` or `in_progress` *and* the calendar is open;
- `waiting_customer` and `waiting_third_party` pause it (the wall time is reported as `paused`);
- `resolved` and `closed` stop it;
- "assign" is met by the first "assigned" event, "first_response" by the first
  "first_response" event, "resolution" by the ticket becoming resolved or closed;
- a reopen (resolved -> in_progress) *resumes* the resolution clock with the business time
  already used, rather than restarting it: the customer's problem was not solved, and from
  their side the time it has taken keeps adding up. The resolution is then met again by the
  next resolve or close;
- a target is breached once its elapsed business time is strictly greater than the target, so
  a clock that stops exactly on its due time is met, not breached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from gateway.tickets.calendar import (
    ALWAYS,
    BusinessCalendar,
    add_business_time,
    business_time_between,
    next_business_instant,
)
from gateway.tickets.lifecycle import (
    DONE,
    RUNNING,
    WAITING,
    Event,
    Kind,
    Status,
    status_history,
)

__all__ = [
    "ClockState",
    "Clocks",
    "SlaPlan",
    "TargetClock",
    "compute_clocks",
]

UTC = UTC
_ZERO = timedelta(0)


@dataclass(frozen=True)
class SlaPlan:
    """The targets a ticket is held to; a target of None is not measured.

    `warn_before` is either a duration ("warn 10 minutes before due") or a fraction of each
    target between 0 and 1 ("warn when 20 % of the time is left"). `calendar` names the
    business calendar whose open hours count.
    """

    name: str
    assign: timedelta | None = timedelta(minutes=30)
    first_response: timedelta | None = None
    resolution: timedelta | None = None
    warn_before: timedelta | float = timedelta(minutes=10)
    calendar: str = ALWAYS

    def __post_init__(self) -> None:
        for label, target in self.targets():
            if target <= _ZERO:
                raise ValueError(f"SLA plan {self.name!r}: {label}: must be positive, got {target}")
        warn = self.warn_before
        if isinstance(warn, timedelta):
            if warn < _ZERO:
                raise ValueError(f"SLA plan {self.name!r}: warn_before: must not be negative")
        elif not 0 < warn < 1:
            raise ValueError(
                f"SLA plan {self.name!r}: warn_before: a fraction must lie between 0 and 1, "
                f"got {warn}"
            )

    def targets(self) -> tuple[tuple[str, timedelta], ...]:
        """The measured targets as (name, duration), in the order a ticket meets them."""
        pairs = (
            ("assign", self.assign),
            ("first_response", self.first_response),
            ("resolution", self.resolution),
        )
        return tuple((label, target) for label, target in pairs if target is not None)

    def warn_window(self, target: timedelta) -> timedelta:
        """How long before the due time a clock with this target starts warning."""
        if isinstance(self.warn_before, timedelta):
            return self.warn_before
        return target * self.warn_before


class ClockState(StrEnum):
    """Where one target's clock stands at `now`."""

    # Ticket in new/in_progress; the time counts whenever the calendar is open.
    RUNNING = "running"
    # Ticket waiting for the customer or a third party.
    PAUSED = "paused"
    # Ticket resolved or closed without this target being met (say, closed unassigned).
    STOPPED = "stopped"
    MET = "met"


@dataclass(frozen=True)
class TargetClock:
    """One target of one ticket at `now`. Times are UTC; `zone` is for showing them.

    `elapsed` is business time while the clock ran; `paused` is wall time spent waiting while
    the target was open, broken down in `paused_by`. `due` projects when the target is reached
    if the clock runs from now on (in the past once reached); it is None when the target is met
    or the clock stopped. `warn_at` is `due` minus the plan's warning window.
    """

    name: str
    target: timedelta
    elapsed: timedelta
    paused: timedelta
    due: datetime | None
    met_at: datetime | None
    breached: bool
    breached_at: datetime | None
    warning: bool
    state: ClockState
    started_at: datetime
    warn_at: datetime | None
    paused_by: tuple[tuple[Status, timedelta], ...]
    calendar: str
    zone: str
    always_open: bool

    @property
    def remaining(self) -> timedelta:
        """Business time left before the target is reached (zero once reached)."""
        return max(self.target - self.elapsed, _ZERO)


@dataclass(frozen=True)
class Clocks:
    """Every clock of one ticket at `now`, plus the totals a customer is shown.

    The totals are wall time: `waiting_for_assignment` from creation until the first
    assignment (or until the ticket was resolved/closed unassigned, or now),
    `in_progress` the time spent in that status, `to_resolution` from creation until the
    current resolution (or now, while unresolved), `paused` all time spent waiting.
    """

    status: Status
    created_at: datetime
    now: datetime
    assign: TargetClock | None
    first_response: TargetClock | None
    resolution: TargetClock | None
    waiting_for_assignment: timedelta
    in_progress: timedelta
    to_resolution: timedelta
    paused: timedelta
    per_status: Mapping[Status, timedelta] = field(hash=False)

    @property
    def targets(self) -> tuple[TargetClock, ...]:
        clocks = (self.assign, self.first_response, self.resolution)
        return tuple(clock for clock in clocks if clock is not None)

    @property
    def breached(self) -> bool:
        return any(clock.breached for clock in self.targets)

    @property
    def warning(self) -> bool:
        return any(clock.warning for clock in self.targets)


@dataclass(frozen=True)
class _Segment:
    """A stretch of wall time [start, end) spent in one status."""

    start: datetime
    end: datetime
    status: Status


def _segments(steps: list[tuple[datetime, Status]], now: datetime) -> list[_Segment]:
    ends = [since for since, _ in steps[1:]] + [now]
    return [_Segment(since, end, status) for (since, status), end in zip(steps, ends, strict=True)]


def _clip(segments: list[_Segment], stop: datetime) -> list[_Segment]:
    """The segments cut off at `stop`."""
    return [
        _Segment(seg.start, min(seg.end, stop), seg.status) for seg in segments if seg.start < stop
    ]


def _first_event(events: Sequence[Event], kind: str) -> datetime | None:
    return min((event.at for event in events if event.kind == kind), default=None)


def _done_since(steps: list[tuple[datetime, Status]]) -> datetime | None:
    """When the ticket last became resolved/closed, if that is where it is now."""
    since = None
    for at, status in reversed(steps):
        if status not in DONE:
            break
        since = at
    return since


def _crossing(
    cal: BusinessCalendar,
    running: list[tuple[_Segment, timedelta]],
    target: timedelta,
    strict: bool,
) -> datetime | None:
    """The instant the running time reaches `target` (or, `strict`, starts to exceed it)."""
    used = _ZERO
    for seg, amount in running:
        total = used + amount
        if total > target or (not strict and total == target):
            instant = add_business_time(cal, seg.start, target - used)
            # Reaching the target on the stroke of closing time is no breach yet: the clock
            # only runs past it when the calendar next opens.
            return next_business_instant(cal, instant) if strict else instant
        used = total
    return None


def _paused_by(pieces: list[_Segment]) -> tuple[tuple[Status, timedelta], ...]:
    totals = {status: _ZERO for status in Status if status in WAITING}
    for seg in pieces:
        if seg.status in WAITING:
            totals[seg.status] += seg.end - seg.start
    return tuple((status, spent) for status, spent in totals.items() if spent)


def _state(status: Status, met_at: datetime | None) -> ClockState:
    if met_at is not None:
        return ClockState.MET
    if status in RUNNING:
        return ClockState.RUNNING
    if status in WAITING:
        return ClockState.PAUSED
    return ClockState.STOPPED


@dataclass(frozen=True)
class _Context:
    """What every target of one computation shares."""

    plan: SlaPlan
    cal: BusinessCalendar
    now: datetime
    status: Status
    created_at: datetime
    segments: list[_Segment]


def _target_clock(
    ctx: _Context, name: str, target: timedelta, met_at: datetime | None
) -> TargetClock:
    pieces = _clip(ctx.segments, met_at or ctx.now)
    running = [
        (seg, business_time_between(ctx.cal, seg.start, seg.end))
        for seg in pieces
        if seg.status in RUNNING
    ]
    elapsed = sum((amount for _, amount in running), _ZERO)
    paused_by = _paused_by(pieces)
    breached = elapsed > target
    state = _state(ctx.status, met_at)
    due: datetime | None = None
    if state in (ClockState.RUNNING, ClockState.PAUSED):
        # Once reached, the due time is history; until then it is a projection from now.
        reached = _crossing(ctx.cal, running, target, strict=False)
        due = reached or add_business_time(ctx.cal, ctx.now, target - elapsed)
    warn_at = due - ctx.plan.warn_window(target) if due is not None else None
    warning = state is ClockState.RUNNING and not breached and warn_at is not None and ctx.now >= warn_at
    return TargetClock(
        name=name,
        target=target,
        elapsed=elapsed,
        paused=sum((spent for _, spent in paused_by), _ZERO),
        due=due,
        met_at=met_at,
        breached=breached,
        breached_at=_crossing(ctx.cal, running, target, strict=True) if breached else None,
        warning=warning,
        state=state,
        started_at=ctx.created_at,
        warn_at=warn_at,
        paused_by=paused_by,
        calendar=ctx.cal.name,
        zone=str(ctx.cal.tz),
        always_open=ctx.cal.is_always,
    )


def compute_clocks(
    events: Sequence[Event], plan: SlaPlan, cal: BusinessCalendar, now: datetime
) -> Clocks:
    """Replay a ticket's event log and return its clocks as they stand at `now`.

    Events later than `now` are ignored, so the same log answers "how did it look then".
    `cal` must be the calendar the plan names.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now}")
    if plan.calendar != cal.name:
        raise ValueError(f"SLA plan {plan.name!r} counts calendar {plan.calendar!r}, given {cal.name!r}")
    now = now.astimezone(UTC)
    past = [event for event in events if event.at <= now]
    steps = status_history(past)
    status = steps[-1][1]
    segments = _segments(steps, now)
    ctx = _Context(plan, cal, now, status, steps[0][0], segments)
    done_since = _done_since(steps)
    assigned_at = _first_event(past, Kind.ASSIGNED)
    met = {"assign": assigned_at, "first_response": _first_event(past, Kind.FIRST_RESPONSE),
           "resolution": done_since}
    clocks = {name: _target_clock(ctx, name, target, met[name]) for name, target in plan.targets()}
    per_status = {s: _ZERO for s in Status}
    for seg in segments:
        per_status[seg.status] += seg.end - seg.start
    return Clocks(
        status=status,
        created_at=ctx.created_at,
        now=now,
        assign=clocks.get("assign"),
        first_response=clocks.get("first_response"),
        resolution=clocks.get("resolution"),
        waiting_for_assignment=(assigned_at or done_since or now) - ctx.created_at,
        in_progress=per_status[Status.IN_PROGRESS],
        to_resolution=(done_since or now) - ctx.created_at,
        paused=sum((per_status[s] for s in WAITING), _ZERO),
        per_status=per_status,
    )
