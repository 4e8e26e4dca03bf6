"""HTML pages from the Jinja2 templates in `templates/web/`, escaped by default.

This module owns the template environments of the web history (one per catalogue language,
with `jinja2.ext.i18n` bound to that language's gettext catalogue) and what every page gets in
its context: the page language, the reader's time zone, how statuses, times, durations and
sizes are written (Babel, for the page's locale and zone), and the CSRF token of the browser's
session. Autoescaping is on for every template, whatever its name: a subject, a body, a file
name or a display name is text, and only HTML that `gateway.mail.htmltext.sanitize_html` has
cleaned is ever marked safe (by the view that cleaned it, not by a template).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from starlette.responses import HTMLResponse

from gateway.i18n import formats
from gateway.i18n.catalogues import languages, translations
from gateway.tickets.lifecycle import Status, display_name


@pass_context
def when(context: Context, value: datetime | None) -> str:
    """A stored instant in the reader's zone and locale, zone named; the markup carries ISO."""
    return formats.when(value, context.get("lang"), context.get("tz"))


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


@pass_context
def duration(context: Context, value: timedelta) -> str:
    return formats.span(value, context.get("lang"))


@pass_context
def filesize(context: Context, size: int) -> str:
    return formats.size(size, context.get("lang"))


def status_namer(lang: str) -> Callable[[str], str]:
    def name(status: str) -> str:
        try:
            return display_name(Status(status), lang)
        except ValueError:
            # A status another version wrote: show it as stored rather than fail the page.
            return status

    return name


def environment(folder: Path, lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # New-style gettext: `_("Ticket %(number)s", number=n)` fills and escapes the values.
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(when=when, iso=iso, duration=duration, filesize=filesize)
    return env


class Pages:
    """Renders `templates/web/<name>.html.j2` in one of the catalogue languages."""

    def __init__(self, templates_dir: Path) -> None:
        folder = templates_dir / "web"
        self.envs = {lang: environment(folder, lang) for lang in languages()}

    def render(self, name: str, *, lang: str, tz: str = "UTC", status_code: int = 200,
               **context: Any) -> HTMLResponse:
        env = self.envs.get(lang) or self.envs[languages()[0]]
        html = env.get_template(f"{name}.html.j2").render(
            lang=lang, tz=tz, zone_label=formats.zone_label(tz, lang), status_name=status_namer(lang), **context
        )
        return HTMLResponse(html, status_code=status_code)
