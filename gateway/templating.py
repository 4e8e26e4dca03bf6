"""Jinja2 templates for mail: one English source per event, translated by the gettext catalogues.

`templates/mail/en/<event>.txt.j2` is the one source of each mail. Its strings are marked with
`_()` and rendered through the catalogue of the recipient's language
(`gateway.i18n.catalogues`), so every mail is in one language from subject to signature. A site
may still put a hand-written `templates/mail/<lang>/<event>.txt.j2` beside it; that file then
wins for that language. A mail template starts with header lines (`Subject: …`), a blank line,
then the body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
)
from jinja2.bccache import Bucket

from gateway.i18n.catalogues import supported, translations

FALLBACK_LANGUAGE = "en"
log = logging.getLogger("gateway.templating")


class _Cache(FileSystemBytecodeCache):
    """Jinja's file cache of compiled templates; one that cannot be read or written (a full
    disk, a read-only temporary folder) is only a cache: the template is compiled instead."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("compiled template not kept: %s", exc)


def _bytecode_cache() -> FileSystemBytecodeCache | None:
    """Compiled templates kept between runs: compiling them costs a CLI verb some 50 ms.

    Jinja keeps them in a folder of this user's own in the temporary directory and checks each
    one against its template's source, so an edited template is compiled again.
    """
    try:
        return _Cache()
    except (OSError, RuntimeError):  # no private temporary folder to be had: compile every time
        return None


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    language: str


# How many renderings `render` keeps: enough for the notices of one ticket in a few languages.
_RECENT = 8
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def _plain_key(value: Any) -> str | None:
    """A key that only equal contexts share: their repr, when they hold nothing but plain values
    (strings, numbers, lists, dicts); None for anything else, which is then rendered each time."""
    # Walked with a stack and exact types: a notice's context is a few dozen values, looked at
    # for every mail rendered (a recursive walk with isinstance cost 34 us a rendering).
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in _PLAIN_TYPES:
            continue
        if kind is list or kind is tuple:
            pending.extend(item)
        elif kind is dict:
            for key, inner in item.items():
                if type(key) is not str:
                    return None
                pending.append(inner)
        else:
            return None
    return repr(value)


class MailTemplates:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._envs: dict[str, Environment] = {}
        self._cache = _bytecode_cache()
        # The last renderings, oldest first, by what they were made of (see `render`).
        self._recent: dict[str, RenderedMail] = {}

    def _env(self, lang: str) -> Environment:
        if lang not in self._envs:
            env = Environment(
                loader=FileSystemLoader(str(self.root)),
                undefined=StrictUndefined,
                keep_trailing_newline=True,
                autoescape=False,
                extensions=["jinja2.ext.i18n"],
                bytecode_cache=self._cache,
            )
            env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
            self._envs[lang] = env
        return self._envs[lang]

    def _template(self, event: str, lang: str) -> Template | None:
        """The site's own `mail/<lang>/` file when there is one, else the source in `lang`."""
        names = [f"mail/{lang}/{event}.txt.j2"]
        if supported(lang):
            names.append(f"mail/{FALLBACK_LANGUAGE}/{event}.txt.j2")
        for name in dict.fromkeys(names):
            try:
                return self._env(lang).get_template(name)
            except TemplateNotFound:
                continue
        return None

    def render(self, event: str, language: str | None, **context: Any) -> RenderedMail:
        """Render `event` in `language`, or in English when that language has neither file nor catalogue.

        A mail rendered again with the same words (the staff notices of one new ticket: the
        same text for each person of a team) is taken from the last few renderings.
        """
        key = _plain_key((event, language, sorted(context.items())))
        if key is not None:
            hit = self._recent.get(key)
            if hit is not None:
                return hit
        rendered = self._render(event, language, context)
        if key is not None:
            self._recent[key] = rendered
            while len(self._recent) > _RECENT:
                del self._recent[next(iter(self._recent))]
        return rendered

    def _render(self, event: str, language: str | None, context: dict[str, Any]) -> RenderedMail:
        for lang in dict.fromkeys([language or FALLBACK_LANGUAGE, FALLBACK_LANGUAGE]):
            template = self._template(event, lang)
            if template is None:
                continue
            head, _, body = template.render(**context).partition("\n\n")
            headers = dict(
                line.split(":", 1) for line in head.splitlines() if ":" in line
            )
            subject = " ".join(headers.get("Subject", "").split())
            return RenderedMail(subject=subject, text=body.strip() + "\n", language=lang)
        raise TemplateNotFound(f"mail/{language}/{event}.txt.j2")
