"""Time zones by IANA name: checking a configured name, and resolving one for display.

Kept apart from `formats` so that the settings can check a zone without loading Babel.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo


def check_zone(name: str) -> str:
    """`name` when it is an IANA zone that tzdata knows; a `ValueError` for settings otherwise."""
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Stockholm)") from None
    return name


def zone(name: str | tzinfo | None) -> tzinfo:
    """A zone from its IANA name; an unknown or missing name is UTC rather than an error page."""
    if isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(name) if name else UTC
    except (ValueError, KeyError):
        return UTC
