"""HTML pages from the Jinja2 templates in `templates/web/`, escaped by default.

This module owns the template environment of the web history and what every page gets in its
context: the translation function `_`, the page language, how statuses, times, durations and
sizes are written, and the CSRF token of the browser's session. Autoescaping is on for every
template, whatever its name: a subject, a body, a file name or a display name is text, and
only HTML that `gateway.mail.htmltext.sanitize_html` has cleaned is ever marked safe (by the
view that cleaned it, not by a template).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

from gateway.tickets.lifecycle import Status, display_name
from gateway.tickets.sla import format_duration
from gateway.web.language import Catalogue


def when(value: datetime | None) -> str:
    """A stored instant as UTC date and time; the markup carries the exact ISO value."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def duration(value: timedelta) -> str:
    return format_duration(value)


def filesize(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} kB"
    return f"{size / (1024 * 1024):.1f} MB"


def status_namer(lang: str) -> Callable[[str], str]:
    def name(status: str) -> str:
        try:
            return display_name(Status(status), lang)
        except ValueError:
            # A status another version wrote: show it as stored rather than fail the page.
            return status

    return name


class Pages:
    """Renders `templates/web/<name>.html.j2` in one language."""

    def __init__(self, templates_dir: Path) -> None:
        folder = templates_dir / "web"
        self.catalogue = Catalogue(folder / "lang")
        self.env = Environment(
            loader=FileSystemLoader(str(folder)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=when, iso=iso, duration=duration, filesize=filesize)

    def render(self, name: str, *, lang: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        def gettext(text: str) -> str:
            return self.catalogue.gettext(lang, text)

        html = self.env.get_template(f"{name}.html.j2").render(
            _=gettext, lang=lang, status_name=status_namer(lang), **context
        )
        return HTMLResponse(html, status_code=status_code)
