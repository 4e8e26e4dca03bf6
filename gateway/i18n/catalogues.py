"""The gettext catalogues of Postdesk: one `.po` file per language, compiled when first used.

Every user-visible string (web pages, mail templates, notices built in code) is written in
English and translated in `gateway/locale/<lang>/LC_MESSAGES/postdesk.po`. Adding a language is
adding its folder with a `.po` file: `languages()` lists what is there. The `.po` files are the
only source; Babel compiles one when its language is first asked for, and the compiled form is
kept between runs (`gateway.keep`) under a digest of the `.po` file's bytes, so a compiled
catalogue can never be older than the text it was made from. `python -m gateway.i18n.extract`
rebuilds the template `postdesk.pot` and merges new strings into every catalogue.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import babel
from babel.support import NullTranslations, Translations

from gateway import keep

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "postdesk"
SOURCE = "en"


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def languages() -> tuple[str, ...]:
    """The languages with a catalogue, English (the source language) first."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return (SOURCE, *[lang for lang in found if lang != SOURCE])


def primary(tag: str | None) -> str:
    """"sv-SE", "sv_SE", "SV" -> "sv"; the empty string for nothing."""
    return (tag or "").replace("_", "-").split("-", 1)[0].strip().lower()


def supported(tag: str | None) -> str | None:
    """The catalogue language `tag` names, or None when we have none for it."""
    lang = primary(tag)
    return lang if lang in languages() else None


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of `lang`; English, and a language we lack, translate to themselves."""
    path = po_path(lang)
    if lang == SOURCE or not path.exists():
        return NullTranslations()
    source = path.read_bytes()
    kept = keep.folder() / (keep.name(f"catalogue-{lang}", source, babel.__version__) + ".mo")
    compiled = keep.read(kept)
    if compiled is not None:
        try:
            return Translations(io.BytesIO(compiled), domain=DOMAIN)
        except Exception:  # a damaged kept file is only a cache: compile the catalogue again
            pass
    compiled = _compile(source, lang)
    keep.write(kept, compiled)
    return Translations(io.BytesIO(compiled), domain=DOMAIN)


def _compile(source: bytes, lang: str) -> bytes:
    """The `.po` text as a `.mo` catalogue (Babel's reader and writer, loaded only to compile)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    catalog = read_po(io.BytesIO(source), locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    # Fuzzy entries are a translator's unchecked guess: like gettext's msgfmt, leave them out.
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def gettext(lang: str, message: str, **values: object) -> str:
    """`message` translated into `lang`, with `%(name)s` placeholders filled from `values`."""
    text = translations(lang).gettext(message)
    return text % values if values else text


def ngettext(lang: str, singular: str, plural: str, count: int, **values: object) -> str:
    text = translations(lang).ngettext(singular, plural, count)
    return text % {"num": count, **values}


def N_(message: str) -> str:
    """Marks `message` for the catalogues where it is translated later, by whoever shows it."""
    return message
