"""Jinja2 templates for mail: `templates/mail/<lang>/<event>.txt.j2`, with a fallback language.

A mail template starts with header lines (`Subject: …`), a blank line, then the body, so that
translators edit one file per event and language.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

FALLBACK_LANGUAGE = "en"


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    language: str


class MailTemplates:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._env = Environment(
            loader=FileSystemLoader(str(root)),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )

    def render(self, event: str, language: str | None, **context: Any) -> RenderedMail:
        """Render `event` in `language`, or in English when that language has no such template."""
        for lang in dict.fromkeys([language or FALLBACK_LANGUAGE, FALLBACK_LANGUAGE]):
            try:
                template = self._env.get_template(f"mail/{lang}/{event}.txt.j2")
            except TemplateNotFound:
                continue
            head, _, body = template.render(**context).partition("\n\n")
            headers = dict(
                line.split(":", 1) for line in head.splitlines() if ":" in line
            )
            subject = " ".join(headers.get("Subject", "").split())
            return RenderedMail(subject=subject, text=body.strip() + "\n", language=lang)
        raise TemplateNotFound(f"mail/{language}/{event}.txt.j2")
