"""The quick test of a line's end in `is_attribution` decides only what the patterns would.

Every line of every reply is asked whether it is an attribution, alone and joined with the
next; `is_attribution` settles a line that ends in neither ":", ">", ")", a "--" rule nor a verb
before trying its four patterns. These tests hold it to the patterns alone on every line of the
shared reply corpora and the repository's fixtures, and on generated lines made of the pieces
attributions are made of.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail import attribution

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO.parent / "shared" / "corpus" / "crisp_reply", REPO.parent / "shared" / "corpus" / "email_reply_parser",
           REPO / "tests" / "fixtures"]


def _disagreements(text: str) -> list[tuple[str, bool]]:
    """(text, strict) wherever the quick test and the patterns alone answer differently."""
    stripped = text.strip()
    if not stripped or len(stripped) > 500:
        return []
    return [(text, strict) for strict in (True, False)
            if attribution.is_attribution(text, strict=strict) != attribution._reads_as_attribution(stripped, strict=strict)]


def _lines() -> list[str]:
    lines: list[str] = []
    for source in SOURCES:
        for path in sorted(source.rglob("*")) if source.exists() else []:
            if path.is_file() and path.suffix in (".txt", ".eml", ""):
                text = path.read_bytes().decode("utf-8", "replace").splitlines()
                lines += text + [" ".join(text[i:i + 3]) for i in range(len(text))]
    return lines


def test_every_corpus_line_is_judged_as_the_patterns_judge_it() -> None:
    lines = _lines()
    if len(lines) < 1000:
        pytest.skip("the shared corpus is not beside the repository")
    assert [d for line in lines for d in _disagreements(line)] == []
    found = sum(attribution.is_attribution(line, strict=False) for line in lines)
    assert found > 50  # the corpus has attributions: the comparison saw both answers


PIECES = ["On", "Den", "Am", "Le", "W dniu", "Tue, 1 Mar 2011", "26.06.2014", "14:41", "3:32 PM", "Anna Berg",
          "<anna@example.se>", "anna@example.se", "wrote", "skrev", "a scris", "schrieb", "a écrit", "napisał(a)",
          "написал(а)", "írta", "kirjoitti", ",", ".", ":", ">", ")", "--", "-", "the", "text", "\t", " "]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12), st.sampled_from(["", " ", ",", ".", ":", "  "]))
def test_lines_of_attribution_pieces_are_judged_as_the_patterns_judge_them(pieces: list[str], end: str) -> None:
    assert _disagreements(" ".join(pieces) + end) == []


# The end test as a pattern: a verb, perhaps a comma or full stop, then the end; any case.
_VERB_AT_END = re.compile(rf"(?:{attribution._VERBS})[,.]?$", re.IGNORECASE)
VERBS = [verb.replace("\\(", "(").replace("\\)", ")") for verb in attribution._VERBS.split("|")]


@settings(max_examples=3000, deadline=None)
@given(st.text(max_size=30), st.sampled_from(VERBS), st.sampled_from(["", ",", ".", ",.", ":", " ", "x"]),
       st.sampled_from([str.lower, str.upper, str.title]))
def test_the_verb_at_the_end_is_found_as_the_pattern_finds_it(before: str, verb: str, after: str,
                                                               case: Callable[[str], str]) -> None:
    text = (before + case(verb) + after).strip()
    if not text:
        return
    expected = _VERB_AT_END.search(text, max(0, len(text) - attribution._TAIL)) is not None
    assert attribution._ends_with_verb(text) is expected
