"""Keep the catalogues current: extract every marked string and merge it into each `.po` file.

`python -m gateway.i18n.extract` reads the web and mail templates (`_()`, `{% trans %}`) and
the Python code (`gettext(lang, "…")`, `ngettext(lang, "…", "…", n)`, `N_("…")`), writes
`gateway/locale/postdesk.pot`, and adds new strings (untranslated) to every language's
`postdesk.po`, keeping the translations already there. `missing(lang)` is what a test and
`postdesk doctor` ask: which strings of the code have no translation in that catalogue.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from gateway.i18n.catalogues import DOMAIN, LOCALE_DIR, SOURCE, languages, po_path

REPO = LOCALE_DIR.parent.parent
# Where strings are marked: (folder, babel method map, keywords). Templates call `_(text)` and
# `ngettext(one, many, n)`; the code passes the language first: `gettext(lang, text)`.
# Babel's keyword spec: the argument positions (1-based) of the singular and plural strings.
Keywords = dict[str, tuple[int, ...] | None]
_TEMPLATE_KEYWORDS: Keywords = {"_": None, "gettext": None, "ngettext": (1, 2)}
_CODE_KEYWORDS: Keywords = {"gettext": (2,), "ngettext": (2, 3), "N_": None}
_SOURCES: tuple[tuple[Path, list[tuple[str, str]], Keywords], ...] = (
    (REPO / "templates", [("web/**.j2", "jinja2"), ("mail/**.j2", "jinja2")], _TEMPLATE_KEYWORDS),
    (REPO / "gateway", [("**.py", "python")], _CODE_KEYWORDS),
)
_OPTIONS = {"**.j2": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}}


def template(templates: Path | None = None) -> Catalog:
    """Every marked string of the code and templates, with where it is used."""
    catalog = Catalog(domain=DOMAIN, project="Postdesk", charset="utf-8")
    for folder, method_map, keywords in _SOURCES:
        if templates is not None and folder.name == "templates":
            folder = templates
        if not folder.exists():
            continue
        for filename, lineno, message, comments, _context in extract_from_dir(
                str(folder), method_map, options_map=_OPTIONS, keywords=keywords, comment_tags=("Translators:",)):
            catalog.add(message, locations=[(f"{folder.name}/{filename}", lineno)], auto_comments=comments)
    return catalog


def missing(lang: str, templates: Path | None = None) -> list[str]:
    """The marked strings that `lang`'s catalogue does not translate (none for English)."""
    if lang == SOURCE:
        return []
    with po_path(lang).open("rb") as handle:
        have = read_po(handle, locale=lang)
    gaps = []
    for message in template(templates):
        if not message.id:
            continue
        found = have.get(message.id)
        strings = found.string if found is not None else None
        done = all(strings) if isinstance(strings, (tuple, list)) else bool(strings)
        if found is None or not done or found.fuzzy:
            gaps.append(message.id if isinstance(message.id, str) else message.id[0])
    return gaps


def update() -> None:
    pot = template()
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("wb") as handle:
        write_po(handle, pot, width=100, omit_header=False)
    for lang in languages():
        path = po_path(lang)
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        catalog.update(pot, no_fuzzy_matching=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, ignore_obsolete=True)


if __name__ == "__main__":
    update()
    for lang in languages():
        gaps = missing(lang)
        print(f"{lang}: {len(gaps)} untranslated" + "".join(f"\n  {gap}" for gap in gaps[:20]))
    sys.exit(0)
