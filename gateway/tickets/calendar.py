"""Business calendars: when support is open, and how much open time lies between two instants.

This module owns `BusinessCalendar` (weekly opening hours in one time zone, closed on a
country's public holidays, from the `holidays` package, and on hand-listed extra days), the
builder that reads one from the config mapping admins write, and the two pieces of arithmetic
the SLA clocks need: `business_time_between` and `add_business_time`.

Opening hours are wall-clock times in the calendar's zone; every computation turns them into
UTC instants per day through zoneinfo, so a day with a DST change has the hours it really has.
Work is proportional to the number of days spanned (a handful of windows per day), never to the
number of minutes; a 24/7 calendar without holidays is plain subtraction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ALWAYS",
    "BusinessCalendar",
    "add_business_time",
    "business_time_between",
    "next_business_instant",
]

ALWAYS = "always"
UTC = UTC
_DAY = timedelta(days=1)
# An opening window ending at 00:00 ends at midnight at the end of its day ("24:00").
_MIDNIGHT = time(0)

Window = tuple[time, time]


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _end_minutes(t: time) -> int:
    return 24 * 60 if t == _MIDNIGHT else _minutes(t)


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly opening hours in `tz`, closed on `holidays` and on `country`'s public holidays.

    `hours` maps a weekday (0 = Monday .. 6 = Sunday) to that day's opening windows as
    (start, end) wall-clock times; an end of 00:00 means midnight at the end of the day, so
    (00:00, 00:00) is the whole day. Windows must not overlap and cannot run past midnight
    (split a night shift over two days). Days missing from `hours` are closed. `country` is an
    ISO 3166 code the `holidays` package knows (SE, RO, DE...), `subdivision` one of its regions.
    """

    name: str
    tz: ZoneInfo
    hours: Mapping[int, tuple[Window, ...]] = field(hash=False)
    holidays: frozenset[date] = frozenset()
    country: str | None = None
    subdivision: str | None = None
    # The package's table for `country`; it computes each year's days the first time asked.
    _public: Any = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        normal: dict[int, tuple[Window, ...]] = {}
        for day, windows in self.hours.items():
            if day not in range(7):
                raise ValueError(f"calendar {self.name!r}: weekday {day!r} is not 0 (Mon)..6 (Sun)")
            ordered = tuple(sorted(windows, key=lambda w: _minutes(w[0])))
            problem = _window_problem(ordered)
            if problem:
                raise ValueError(f"calendar {self.name!r}: weekday {day}: {problem}")
            normal[day] = ordered
        if not any(normal.values()):
            raise ValueError(f"calendar {self.name!r}: hours: no business hours on any day")
        object.__setattr__(self, "hours", normal)
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if self.country:
            # Imported for calendars that name a country: it costs every verb ~30 ms to load.
            import holidays as public_holidays

            try:
                table = public_holidays.country_holidays(self.country.upper(), subdiv=self.subdivision)
            except NotImplementedError as exc:
                raise ValueError(f"calendar {self.name!r}: country: {exc}") from None
            object.__setattr__(self, "_public", table)

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays or (self._public is not None and day in self._public)

    def holiday_name(self, day: date) -> str | None:
        """The public holiday's name (in the package's language), "extra" for a listed day, or None."""
        if self._public is not None and day in self._public:
            return str(self._public.get(day))
        return "extra" if day in self.holidays else None

    @classmethod
    def always(cls, tz: str | ZoneInfo = "UTC", name: str = ALWAYS) -> BusinessCalendar:
        """Open 24 hours a day, 7 days a week; `tz` only matters for showing times."""
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        return cls(name, zone, {day: ((_MIDNIGHT, _MIDNIGHT),) for day in range(7)})

    @classmethod
    def from_config(cls, name: str, raw: Mapping[str, Any]) -> BusinessCalendar:
        """Build a calendar from a config mapping; a `ValueError` names the offending key.

        Example: {"timezone": "Europe/Stockholm", "country": "SE",
                  "hours": {"mon-fri": "08:00-17:00", "sat": "09:00-12:00"},
                  "holidays": ["2026-12-24", "2026-12-31"]}
        `country` (and `subdivision`) bring that country's public holidays; `holidays` lists
        extra closed days (Christmas Eve, a company day).
        An hours value may list several windows ("08:00-12:00, 13:00-17:00" or a list) and may
        end at "24:00"; "closed" or an empty list marks a day closed.
        """
        return _ConfigReader(name).read(raw)

    @property
    def is_always(self) -> bool:
        """True when open around the clock every day, so business time is wall time."""
        full = ((_MIDNIGHT, _MIDNIGHT),)
        return not self.holidays and not self.country and all(self.hours.get(d) == full for d in range(7))

    def windows_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The opening windows of a local calendar day as UTC instants, in order."""
        if self.is_holiday(day):
            return []
        result = []
        for start, end in self.hours.get(day.weekday(), ()):
            opens = datetime.combine(day, start, self.tz).astimezone(UTC)
            end_day = day + _DAY if end == _MIDNIGHT else day
            closes = datetime.combine(end_day, end, self.tz).astimezone(UTC)
            # A window inside the spring-forward gap has no real time in it.
            if closes > opens:
                result.append((opens, closes))
        return result

    def windows_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening windows (UTC) that end after `at`, in order, without end."""
        day = at.astimezone(self.tz).date()
        while True:
            for opens, closes in self.windows_on(day):
                if closes > at:
                    yield opens, closes
            day += _DAY


def _window_problem(ordered: tuple[Window, ...]) -> str | None:
    """What is wrong with one day's windows (sorted by start), or None."""
    for start, end in ordered:
        if _end_minutes(end) <= _minutes(start):
            return (
                f"window {start:%H:%M}-{end:%H:%M} ends before it starts "
                "(split hours past midnight over two days)"
            )
    for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
        if _minutes(start) < _end_minutes(end):
            return "opening windows overlap"
    return None


def _require_aware(label: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{label} must be timezone-aware, got {value}")


def business_time_between(cal: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Open time of `cal` in [start, end); zero when end is not after start."""
    _require_aware("start", start)
    _require_aware("end", end)
    if end <= start:
        return timedelta(0)
    if cal.is_always:
        return end - start
    total = timedelta(0)
    for opens, closes in cal.windows_from(start):
        if opens >= end:
            break
        total += min(closes, end) - max(opens, start)
    return total


def add_business_time(cal: BusinessCalendar, start: datetime, delta: timedelta) -> datetime:
    """The earliest instant (UTC) by which `delta` of open time has passed since `start`."""
    _require_aware("start", start)
    if delta < timedelta(0):
        raise ValueError(f"delta must not be negative, got {delta}")
    start = start.astimezone(UTC)
    if delta == timedelta(0) or cal.is_always:
        return start + delta
    remaining = delta
    # The calendar has open hours on some weekday and finitely many holidays, so this ends.
    for opens, closes in cal.windows_from(start):
        begin = max(opens, start)
        if remaining <= closes - begin:
            return begin + remaining
        remaining -= closes - begin
    raise AssertionError("unreachable: windows_from never ends")


def next_business_instant(cal: BusinessCalendar, at: datetime) -> datetime:
    """`at` (in UTC) when the calendar is open then, else the moment it next opens."""
    _require_aware("at", at)
    at = at.astimezone(UTC)
    opens, _closes = next(cal.windows_from(at))
    return max(opens, at)


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_KEYS = frozenset({"timezone", "hours", "holidays", "country", "subdivision"})


class _ConfigReader:
    """Turns one calendar's config mapping into a `BusinessCalendar`, naming keys in errors."""

    def __init__(self, name: str) -> None:
        self.name = name

    def error(self, key: str, reason: str) -> ValueError:
        return ValueError(f"calendar {self.name!r}: {key}: {reason}")

    def read(self, raw: Mapping[str, Any]) -> BusinessCalendar:
        if not isinstance(raw, Mapping):
            raise ValueError(f"calendar {self.name!r}: expected a mapping, got {raw!r}")
        for key in raw:
            if key not in _KEYS:
                expected = ", ".join(sorted(_KEYS))
                raise self.error(str(key), f"unknown key (expected one of {expected})")
        tz = self.zone(raw.get("timezone"))
        hours = self.hours(raw.get("hours"))
        holidays = self.holidays(raw.get("holidays", []))
        country, subdivision = raw.get("country"), raw.get("subdivision")
        for key, value in (("country", country), ("subdivision", subdivision)):
            if value is not None and not isinstance(value, str):
                raise self.error(key, f"expected a code like SE or RO, got {value!r}")
        if subdivision and not country:
            raise self.error("subdivision", "needs a country")
        return BusinessCalendar(self.name, tz, hours, holidays, country or None, subdivision or None)

    def zone(self, value: Any) -> ZoneInfo:
        if not value or not isinstance(value, str):
            raise self.error("timezone", "required: an IANA zone name such as Europe/Stockholm")
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.error("timezone", f"unknown time zone {value!r}") from None

    def hours(self, value: Any) -> dict[int, tuple[Window, ...]]:
        if not isinstance(value, Mapping) or not value:
            raise self.error("hours", "required: a mapping such as {mon-fri: 08:00-17:00}")
        result: dict[int, tuple[Window, ...]] = {}
        for spec, ranges in value.items():
            key = f"hours[{spec!r}]"
            windows = tuple(sorted(self.windows(key, ranges)))
            problem = _window_problem(windows)
            if problem:
                raise self.error(key, problem)
            for day in self.days(key, spec):
                if day in result:
                    raise self.error(key, f"{_DAY_NAMES[day]} is given more than once")
                result[day] = windows
        return result

    def days(self, key: str, spec: Any) -> list[int]:
        days: list[int] = []
        for part in str(spec).lower().split(","):
            first, _, last = part.strip().partition("-")
            lo, hi = self.day(key, first), self.day(key, last or first)
            # A range may wrap around the week ("sat-mon").
            days.extend((lo + i) % 7 for i in range((hi - lo) % 7 + 1))
        return days

    def day(self, key: str, text: str) -> int:
        word = text.strip()
        if word in _DAY_NAMES:
            return _DAY_NAMES.index(word)
        if word in _FULL_DAY_NAMES:
            return _FULL_DAY_NAMES.index(word)
        raise self.error(key, f"{word!r} is not a weekday (mon, tue, ... sun)")

    def windows(self, key: str, value: Any) -> list[Window]:
        if value is None or (isinstance(value, str) and value.strip().lower() == "closed"):
            return []
        parts = value.split(",") if isinstance(value, str) else value
        if not isinstance(parts, (list, tuple)):
            raise self.error(key, f"{value!r} is not a range like 08:00-17:00 or a list of them")
        return [self.window(key, part) for part in parts]

    def window(self, key: str, text: Any) -> Window:
        match = _RANGE.match(str(text))
        if not match:
            raise self.error(key, f"{text!r} is not a range like 08:00-17:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h2, m2) == (24, 0):
            h2 = 0
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise self.error(key, f"{text!r} has a time outside 00:00-24:00")
        return time(h1, m1), time(h2, m2)

    def holidays(self, value: Any) -> frozenset[date]:
        if not isinstance(value, list):
            raise self.error("holidays", f"expected a list of dates like 2026-12-24, got {value!r}")
        result = set()
        for index, item in enumerate(value):
            # YAML hands unquoted dates over as `date` objects already.
            if isinstance(item, date) and not isinstance(item, datetime):
                result.add(item)
                continue
            try:
                result.add(date.fromisoformat(str(item).strip()))
            except ValueError:
                raise self.error(
                    f"holidays[{index}]", f"{item!r} is not a date like 2026-12-24"
                ) from None
        return frozenset(result)
