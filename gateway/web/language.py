"""The language of a page: negotiation from Accept-Language, and the translated strings.

This module owns which languages the web history speaks (English, Swedish, Romanian), how one
is chosen for a request (the browser's Accept-Language first, then the customer's own setting,
then the instance default), and the catalogues of translated strings.

Templates are written in English and wrap text in `_("...")`. Translations live beside the
templates, in `templates/web/lang/<lang>.yaml`, as `English text: translation` pairs, so that
translators edit text files rather than Python. A string missing from a catalogue is shown in
English rather than failing the page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import yaml

log = logging.getLogger("gateway.web")

LANGUAGES = ("en", "sv", "ro")
DEFAULT = "en"


def _primary(tag: str) -> str:
    return tag.replace("_", "-").split("-", 1)[0].strip().lower()


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most, or None if it names none of ours."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = _primary(tag)
        if lang in LANGUAGES and quality > 0:
            # Equal weights keep the browser's order: the position breaks the tie.
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else None


def negotiate(accept_language: str | None, *fallbacks: str | None) -> str:
    """Accept-Language first, then each fallback (customer setting, instance default)."""
    found = from_accept_language(accept_language)
    if found:
        return found
    for candidate in fallbacks:
        if candidate and _primary(candidate) in LANGUAGES:
            return _primary(candidate)
    return DEFAULT


class Catalogue:
    """Translated strings per language, read once from `templates/web/lang/`."""

    def __init__(self, folder: Path) -> None:
        self._strings: dict[str, Mapping[str, str]] = {DEFAULT: {}}
        for lang in LANGUAGES:
            path = folder / f"{lang}.yaml"
            if lang != DEFAULT and path.exists():
                self._strings[lang] = self._read(path)

    @staticmethod
    def _read(path: Path) -> Mapping[str, str]:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            log.error("%s: expected 'English text: translation' pairs; using English", path)
            return {}
        return {str(key): str(value) for key, value in data.items() if value}

    def gettext(self, lang: str, text: str) -> str:
        return self._strings.get(lang, {}).get(text, text)
