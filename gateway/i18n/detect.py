"""The language of a customer's own text, by Lingua's statistical models (shipped in its wheel).

Only languages we might be asked to tell apart are loaded: those we have catalogues for, and a
few neighbours (Danish, Norwegian, German, French) so that their text is not taken for Swedish
or English. A text too short or too mixed to call gives None, and the caller falls back.

Lingua's low-accuracy mode (trigram models) is used: the first text of a new customer is a
sentence or more, which it calls as well as the full models do, and its models load in well
under a second on first use where the full ones take several, holding up the processor.

`warm_up` loads them on a thread of their own: Lingua reads its models in Rust with the GIL
released, so a process that will detect (the processor, `postdesk route`) has them ready by
the time its own imports and set-up are done, on the second core, instead of after them.
"""

from __future__ import annotations

import re
import threading

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

from gateway.i18n.catalogues import languages

_NEIGHBOURS = ("da", "nb", "de", "fr")
# Fewer letters than this say too little to name a language (a "Hej" is Danish as well).
MIN_LETTERS = 20
# How far ahead of the runner-up the winner must be (Lingua's relative distance, 0..1).
MIN_DISTANCE = 0.2
# Links, addresses and anything with a digit in it (order numbers, phone numbers, tokens) are
# in no language: a signed link's random letters alone made a Romanian confirmation Swedish in
# about one case of fifty. Tested word by word (a pattern over the text that skips such words
# backtracks over every long one: 0.1 s for a 2,000-letter blob).
_NOT_A_WORD = re.compile(r"://|www\.|@|\d")


_lock = threading.Lock()
_built: list[LanguageDetector] = []


def _detector() -> LanguageDetector:
    """The one detector of this process, built by whoever asks first (a caller waits for it)."""
    if _built:
        return _built[0]
    with _lock:
        if not _built:
            _built.append(_build())
        return _built[0]


def warm_up() -> threading.Thread | None:
    """Start building the detector in the background; None when it is built already."""
    if _built:
        return None
    thread = threading.Thread(target=_detector, name="lingua-models", daemon=True)
    thread.start()
    return thread


def _build() -> LanguageDetector:
    codes = dict.fromkeys([*languages(), *_NEIGHBOURS])
    wanted = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in codes]
    return (LanguageDetectorBuilder.from_languages(*wanted).with_minimum_relative_distance(MIN_DISTANCE)
            # Loaded at build, on Lingua's own threads: about half the time of loading them one
            # by one on the first detection.
            .with_low_accuracy_mode().with_preloaded_language_models().build())


def detect(text: str) -> str | None:
    """The ISO 639-1 code of the language `text` is written in, or None when it cannot be told."""
    sample = _sample(text)
    if not _has_letters(sample, MIN_LETTERS):
        return None
    found = _detector().detect_language_of(sample)
    return found.iso_code_639_1.name.lower() if found is not None else None


def detect_many(texts: list[str]) -> list[str | None]:
    """`detect` of each text, all of them in one call: Lingua spreads them over its threads
    (both cores) and the calls' own overhead is paid once (about half the CPU of one by one)."""
    samples = [_sample(text) for text in texts]
    callable_ = [_has_letters(sample, MIN_LETTERS) for sample in samples]
    wanted = [sample for sample, enough in zip(samples, callable_, strict=True) if enough]
    found = iter(_detector().detect_languages_in_parallel_of(wanted) if wanted else [])
    codes: list[str | None] = []
    for enough in callable_:
        language = next(found) if enough else None
        codes.append(language.iso_code_639_1.name.lower() if language is not None else None)
    return codes


def _sample(text: str) -> str:
    return " ".join(word for word in text[:2000].split() if not _NOT_A_WORD.search(word))


def _has_letters(text: str, wanted: int) -> bool:
    """Whether `text` has at least `wanted` letters: counted until there are enough (a sentence
    in), not over the whole sample for every new customer."""
    letters = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if letters >= wanted:
                return True
    return False

