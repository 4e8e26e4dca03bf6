"""Scores of Postdesk's mail reading on every shared corpus set; prints figures, passes nothing.

    python bench/corpus.py [--failures]

Reply sets (`crisp_reply`, `email_reply_parser`): the share of files whose new text meets the
expectations transcribed from the upstream test suites (only expectations about the visible
text count; fragment counts are the upstream parser's own segmentation). Message sets: how
many mails get a sender, a subject and body text; bounces found with their recipients and
status (`sisimai_bounces`); the autoreply labels (`autoreply`). `tests/test_corpus_replies.py`
uses the same scoring and fails under 95 %.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
Check = Callable[[str], str | None]  # new text -> a problem, or None


def _text_of(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")


def _regex(item: dict[str, Any]) -> re.Pattern[str]:
    flags = re.MULTILINE if "m" in item.get("flags", "") else 0
    return re.compile(item["regex"], flags | (re.IGNORECASE if "i" in item.get("flags", "") else 0))


def crisp_checks(expected: dict[str, Any]) -> list[Check]:
    """What a crisp_reply expectation says about the new text (the non-hidden fragments)."""
    checks: list[Check] = []
    if "visible_text" in expected:
        want, trim = expected["visible_text"], expected.get("visible_text_compare") == "trim"
        checks.append(lambda t, w=want, tr=trim: None if (t.strip() if tr else t) == w or t.strip() == w.strip()
                      else f"visible text {t!r}")
    fragments = expected.get("fragments", [])
    # Fragment 0 is the whole new text only when no later fragment is asserted without being
    # hidden (a bottom-posted answer below the quote is new text too).
    whole = all(f.get("hidden") or f.get("quoted") or f.get("signature") for f in fragments if f["index"] > 0)
    for fragment in fragments:
        checks += _fragment_checks(fragment, whole)
    for text in expected.get("quoted_text_contains", []):
        checks.append(lambda t, s=text: f"has quoted {s!r}" if s in t else None)
    return checks


def _fragment_checks(fragment: dict[str, Any], whole: bool) -> list[Check]:
    checks: list[Check] = []
    hidden = fragment.get("hidden") or fragment.get("quoted") or fragment.get("signature")
    if fragment["index"] == 0 and not hidden:
        if "content" in fragment and whole:
            checks.append(lambda t, w=fragment["content"]: None if t.strip() == w.strip() else f"new text {t!r}")
        elif "content" in fragment:
            checks.append(lambda t, w=fragment["content"]: None if t.strip().startswith(w.strip())
                          else f"new text starts {t[:80]!r}")
        for text in fragment.get("contains", []):
            checks.append(lambda t, s=text: None if s in t else f"lacks {s!r}")
        for item in fragment.get("matches", []):
            checks.append(lambda t, r=_regex(item): None if r.search(t.strip()) else f"does not match {r.pattern!r}")
    elif hidden:
        for item in fragment.get("matches", []):
            # A hidden fragment's opening must not be in the new text.
            pattern = _regex(item).pattern.lstrip("^")
            checks.append(lambda t, p=re.compile(pattern, re.MULTILINE): f"has hidden {p.pattern!r}"
                          if p.search(t) and p.pattern.strip() else None)
    return checks


def erp_checks(expected: dict[str, Any]) -> list[Check]:
    """What an email_reply_parser expectation says about the visible text."""
    checks: list[Check] = []
    if "visible_text_equals" in expected:
        checks.append(lambda t, w=expected["visible_text_equals"]: None if t.strip() == w.strip() else f"visible {t!r}")
    if "visible_text_stripped_equals" in expected:
        checks.append(lambda t, w=expected["visible_text_stripped_equals"]: None if t.strip() == w else f"visible {t!r}")
    for text in expected.get("visible_text_contains", []):
        checks.append(lambda t, s=text: None if s in t else f"lacks {s!r}")
    for text in expected.get("visible_text_not_contains", []):
        checks.append(lambda t, s=text: f"has {s!r}" if s in t else None)
    return checks


def score_replies(folder: str, make_checks: Callable[[dict[str, Any]], list[Check]],
                  new_text: Callable[[str], str]) -> tuple[int, int, dict[str, list[str]]]:
    """(passed, judged, failures) over the files of one reply set that carry visible-text checks."""
    expected = json.loads((CORPUS / folder / "expected.json").read_text(encoding="utf-8"))
    passed, judged, failures = 0, 0, {}
    base = CORPUS / folder / "fixtures" if (CORPUS / folder / "fixtures").is_dir() else CORPUS / folder
    cases = [(name, _text_of(base / name), e) for name, e in expected["files"].items() if (base / name).is_file()]
    cases += [(f"inline:{c.get('test', i)}", c["input"], c) for i, c in enumerate(expected.get("inline_cases", []))]
    for name, body, e in cases:
        checks = make_checks(e)
        if not checks:
            continue
        judged += 1
        text = new_text(body)
        problems = [p for check in checks if (p := check(text))]
        if problems:
            failures[name] = problems
        else:
            passed += 1
    return passed, judged, failures


def reply_scores() -> dict[str, tuple[int, int, dict[str, list[str]]]]:
    from gateway.mail.quotes import visible_text

    return {"crisp_reply": score_replies("crisp_reply", crisp_checks, visible_text),
            "email_reply_parser": score_replies("email_reply_parser", erp_checks, visible_text)}


def message_scores() -> dict[str, str]:
    """Sender, subject, body and attachment figures for the sets of whole messages."""
    from gateway.mail.classify import classify
    from gateway.mail.parse import parse

    lines = {}
    for folder in ("cpython_email", "sisimai_bounces", "autoreply"):
        paths = [p for p in sorted((CORPUS / folder).rglob("*")) if p.is_file() and p.suffix not in (".json", ".md")]
        mails = [(p, parse(p.read_bytes())) for p in paths]
        sender = sum(1 for _, m in mails if m.sender.address)
        subject = sum(1 for _, m in mails if m.subject.strip())
        body = sum(1 for _, m in mails if (m.text_plain or m.text_html).strip())
        lines[folder] = (f"{len(mails)} mails: sender {sender}, subject {subject}, body text {body}, "
                         f"attachments {sum(len(m.attachments) for _, m in mails)}")
        if folder == "sisimai_bounces":
            kinds = [classify(m.message, mail_from="").kind for _, m in mails]
            lines[folder] += f"; classified as bounce {kinds.count('bounce')}/{len(kinds)}"
        if folder == "autoreply":
            lines[folder] += "; " + _autoreply_agreement(mails)
    return lines


def _autoreply_agreement(mails: list[tuple[Path, Any]]) -> str:
    """How many mails get a kind their labels allow (the labels' reading is tests/test_classify.py's)."""
    from gateway.mail.classify import classify

    expected = json.loads((CORPUS / "autoreply" / "expected.json").read_text(encoding="utf-8"))["files"]
    agree = 0
    for path, mail in mails:
        entry = expected.get(str(path.relative_to(CORPUS / "autoreply")), {})
        label, upstream = entry.get("annotation_category", ""), entry.get("upstream_expectation") or {}
        allowed = {"bounce", "auto_reply"} if label.startswith("ambiguous") else \
            {"auto_reply"} if label.startswith(("auto-reply", "automated")) else \
            {"bounce"} if label.startswith("bounce") else {"customer"}
        if "is_bounce" in upstream:
            allowed = allowed & {"bounce"} if upstream["is_bounce"] else allowed - {"bounce"}
        agree += classify(mail.message, mail_from=None).kind in allowed
    return f"kind agrees with the labels {agree}/{len(mails)}"


def main() -> None:
    started = time.perf_counter()
    for name, (passed, judged, failures) in reply_scores().items():
        print(f"{name}: new text right {passed}/{judged} = {passed / judged:.1%}")
        if "--failures" in sys.argv:
            for file, problems in failures.items():
                print(f"  FAIL {file}: {'; '.join(problems)[:300]}")
    for name, line in message_scores().items():
        print(f"{name}: {line}")
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
