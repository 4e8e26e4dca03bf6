"""The language of a page: negotiation from Accept-Language among the languages we have.

This module owns how one language is chosen for a request: the browser's Accept-Language
first, then the person's own setting, then the instance default. The languages are those with a
catalogue (`gateway.i18n.catalogues.languages`); the translations themselves live there.
"""

from __future__ import annotations

from gateway.i18n.catalogues import SOURCE, languages, primary, supported

DEFAULT = SOURCE


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
        lang = primary(tag)
        if lang in languages() and quality > 0:
            # Equal weights keep the browser's order: the position breaks the tie.
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else None


def negotiate(accept_language: str | None, *fallbacks: str | None) -> str:
    """Accept-Language first, then each fallback (the person's setting, instance default)."""
    found = from_accept_language(accept_language)
    if found:
        return found
    for candidate in fallbacks:
        lang = supported(candidate)
        if lang:
            return lang
    return DEFAULT
