"""Why a due time is what it is: one sentence per SLA clock, for operators (logs, `ticket show`).

`gateway.tickets.notices` says the same to a person in their language; this is the English line
of the event log and the CLI. `format_duration` is the short duration both print.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.tickets.lifecycle import display_name
from gateway.tickets.sla import ClockState, TargetClock


def format_duration(span: timedelta) -> str:
    """A short human duration: "45 s", "30 min", "2h10m", "1d3h"."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    if not days and not hours:
        return f"{minutes} min"
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "")
    return text + (f"{minutes}m" if minutes else "")


def _local(instant: datetime, zone: ZoneInfo, same_day_as: datetime | None = None) -> str:
    """Local date and time, or just the time when it falls on the day of `same_day_as`."""
    local = instant.astimezone(zone)
    if same_day_as is not None and same_day_as.astimezone(zone).date() == local.date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def _pauses(clock: TargetClock) -> str:
    """", paused 2h10m waiting for customer and 1h waiting for third party", or ""."""
    parts = [
        f"{format_duration(spent)} {display_name(status, 'en').lower()}"
        for status, spent in clock.paused_by
    ]
    return f", paused {' and '.join(parts)}" if parts else ""


def _headline(clock: TargetClock, zone: ZoneInfo, kind: str) -> str:
    """The first clause of `explain`: the clock's state, its instant, and what it counted."""
    # Each state carries its own instant: met_at when met, breached_at or due otherwise.
    instant = clock.met_at or clock.breached_at or clock.due or clock.started_at
    start = _local(clock.started_at, zone, instant)
    target = format_duration(clock.target)
    if clock.state is ClockState.STOPPED:
        used = format_duration(clock.elapsed)
        return f"{clock.name} stopped, ticket resolved or closed: {used} of {target} {kind} used"
    if clock.state is ClockState.MET:
        used = format_duration(clock.elapsed)
        head = f"{clock.name} met {_local(instant, zone)} {clock.zone}: {used} of {target} {kind}"
        head += f" used since {start}"
        if clock.breached_at is not None:
            head += f", breached {_local(clock.breached_at, zone, instant)}"
        return head
    verb = "breached" if clock.breached else "due"
    head = f"{clock.name} {verb} {_local(instant, zone)} {clock.zone}: "
    head += f"{target} of {kind} from {start}"
    if clock.elapsed:
        head += f", {format_duration(clock.elapsed)} used"
    return head


def explain(clock: TargetClock) -> str:
    """One sentence saying where a target stands and why its due time is what it is.

    e.g. "assign due 2026-03-04 09:30 Europe/Stockholm: 30 min of business time
    (calendar support) from 08:58, 2 min used, paused 2h10m waiting for customer".
    """
    kind = "time" if clock.always_open else f"business time (calendar {clock.calendar})"
    text = _headline(clock, ZoneInfo(clock.zone), kind) + _pauses(clock)
    if clock.state is ClockState.PAUSED:
        text += "; the clock is paused, so the due time assumes work resumes now"
    return text
