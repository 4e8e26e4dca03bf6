"""The new text of every reply in the shared reply corpora, scored against their expectations.

`crisp_reply/` (90 replies in 12 languages from many clients) and `email_reply_parser/` carry
expectations transcribed from the upstream test suites; `bench/corpus.py` holds the scoring
(only expectations about the visible text count) and prints the same figures with the other
sets. The test prints the figure and fails under 95 %.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
REQUIRED_SHARE = 0.95


def _scoring() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_corpus", REPO / "bench" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("folder", ["crisp_reply", "email_reply_parser"])
def test_reply_corpus_share(folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not (CORPUS / folder / "expected.json").is_file():
        pytest.skip(f"shared corpus {folder} not found at {CORPUS}")
    passed, judged, failures = _scoring().reply_scores()[folder]
    share = passed / judged
    with capsys.disabled():
        print(f"\n{folder} new text: {passed}/{judged} = {share:.1%}")
        for name, problems in failures.items():
            print(f"  FAIL {name}: {'; '.join(problems)[:200]}")
    assert judged >= 20, "the expectations were not read"
    assert share >= REQUIRED_SHARE, failures
