"""Instants, durations, numbers and sizes written the way the reader's locale writes them (Babel).

Stored instants are UTC; every function here that shows one takes the reader's zone and says
which zone it is in, so that "10:05" is never ambiguous. Durations are exact to the minute
("3 dygn och 3 minuter", "2 ore și 10 minute") because SLA times are compared with targets;
below a minute they are given in seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from babel.dates import format_datetime, get_timezone_location, get_timezone_name
from babel.lists import format_list
from babel.numbers import format_decimal
from babel.units import format_unit

from gateway.i18n.catalogues import primary
from gateway.i18n.zones import check_zone as check_zone  # re-exported for callers of formats
from gateway.i18n.zones import zone

DEFAULT_ZONE = "Europe/Stockholm"
# Babel's locale for each catalogue language: English as written in Europe (24-hour clock,
# day before month), since Postdesk's people are in Europe.
_LOCALES = {"en": "en_GB"}


def locale_of(lang: str | None) -> str:
    code = primary(lang) or "en"
    return _LOCALES.get(code, code)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def when(value: datetime | None, lang: str | None, tz: str | tzinfo | None) -> str:
    """Local date and time with the zone's short name: "2026-12-01 10:05 CET"."""
    if value is None:
        return ""
    local = _aware(value).astimezone(zone(tz))
    locale = locale_of(lang)
    return f"{format_datetime(local, 'short', locale=locale)} {zone_abbreviation(local, locale)}"


def zone_abbreviation(local: datetime, locale: str) -> str:
    name = get_timezone_name(local, "short", locale=locale)
    # Babel answers with a GMT offset where a locale has no short name; the tzdata one is better.
    if name.startswith(("GMT", "UTC")) and local.tzname():
        return str(local.tzname())
    return name


def zone_label(tz: str | tzinfo | None, lang: str | None) -> str:
    """The zone as a reader names it, with its IANA name: "Sverigetid (Europe/Stockholm)"."""
    where = zone(tz)
    key = getattr(where, "key", None) or "UTC"
    if key == "UTC":
        return "UTC"
    return f"{get_timezone_location(where, locale=locale_of(lang))} ({key})"


def span(value: timedelta, lang: str | None) -> str:
    """An exact duration in words: "45 seconds", "1 day, 3 hours and 10 minutes"."""
    locale = locale_of(lang)
    seconds = int(value.total_seconds())
    if seconds < 60:
        return format_unit(max(seconds, 0), "duration-second", length="long", locale=locale)
    days, rest = divmod(seconds, 86400)
    parts = [(days, "duration-day"), (rest // 3600, "duration-hour"), (rest % 3600 // 60, "duration-minute")]
    words = [format_unit(n, unit, length="long", locale=locale) for n, unit in parts if n]
    return format_list(words, locale=locale)


def number(value: float, lang: str | None) -> str:
    return format_decimal(value, locale=locale_of(lang))


def size(value: int, lang: str | None) -> str:
    """A byte count as people read it: "512 B", "14 kB", "1,4 MB"."""
    locale = locale_of(lang)
    if value < 1024:
        return format_unit(value, "digital-byte", length="short", locale=locale)
    if value < 1024 * 1024:
        return format_unit(round(value / 1024), "digital-kilobyte", length="short", locale=locale)
    return format_unit(round(value / (1024 * 1024), 1), "digital-megabyte", length="short", locale=locale)
