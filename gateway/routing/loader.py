"""Loading `rules/*.yaml` into a `RuleSet`, reporting every problem in every file at once.

Files load in file-name order (`10-topics.yaml` before `20-customers.yaml`); names starting
with a dot (editor lock files) are skipped. A rule with any problem is left out and the
load fails as a whole with `RulesError`, so a caller that already has rules in force keeps
them until the admin has fixed every reported line.

The checks, each reported as `file:line: reason`: YAML syntax; the schema (unknown keys,
wrong types, bad regexes, one operator per condition, see `gateway.routing.schema`); rule
names unique across files; at most one of quarantine/drop/reject, and no `continue` beside
one; every `{placeholder}` in `set` captured by a named group of the rule's regexes; and,
given a `Directory`, every department and topic the rules name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from gateway.routing.actions import placeholders
from gateway.routing.directory import Directory
from gateway.routing.evaluate import CompiledRule, RuleSet, compile_rule
from gateway.routing.schema import TERMINALS, Actions, Rule, conditions, vocabulary
from gateway.routing.yamlsource import (
    Document,
    Loc,
    Problem,
    loc_text,
    read_yaml,
    validation_problems,
)

DEFAULT_RULES = Path("rules")
_VOCABULARY = vocabulary()


class RulesError(Exception):
    """The rules did not load; `problems` lists every one, each with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def load_rules(directory: Path = DEFAULT_RULES, known: Directory | None = None) -> RuleSet:
    """All rules of `directory`, compiled; `known` also checks the names of departments/topics."""
    ruleset, problems = _load(directory, known)
    if problems:
        raise RulesError(problems)
    return ruleset


def check(directory: Path = DEFAULT_RULES, known: Directory | None = None) -> list[Problem]:
    """Every problem `load_rules` would raise, or [] when the rules are good."""
    return _load(directory, known)[1]


def rule_files(directory: Path) -> list[Path]:
    found = (p for p in directory.glob("*.yaml") if p.is_file() and not p.name.startswith("."))
    return sorted(found, key=lambda p: p.name)


def _load(directory: Path, known: Directory | None) -> tuple[RuleSet, list[Problem]]:
    if not directory.is_dir():
        return RuleSet(), [Problem(str(directory), 1, "no such directory of rule files")]
    files = rule_files(directory)
    problems: list[Problem] = []
    rules: list[CompiledRule] = []
    # Rule name -> where it was first defined, across all files.
    names: dict[str, str] = {}
    for path in files:
        doc, in_file = read_yaml(path)
        if doc is None or doc.data is None:
            problems += in_file
            continue
        if not isinstance(doc.data, list):
            problems += in_file
            problems.append(doc.problem((), "a rules file is a list of rules, each '- name: ...'"))
            continue
        for index, raw in enumerate(doc.data):
            rule, found = _one_rule(doc, index, raw, known, names)
            in_file += found
            if rule is not None:
                rules.append(rule)
        # The YAML, schema and cross-checks find problems in different orders; admins read down.
        problems += sorted(in_file, key=lambda problem: problem.line)
    return RuleSet(rules, [str(p) for p in files]), problems


def _one_rule(
    doc: Document, index: int, raw: object, known: Directory | None, names: dict[str, str]
) -> tuple[CompiledRule | None, list[Problem]]:
    loc: Loc = (index,)
    problems = []
    # Checked on the raw data so that a duplicate is reported even if the rule is broken.
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str) and name:
        here = f"{doc.file}:{doc.line(loc + ('name',))}"
        first = names.setdefault(name, here)
        if first != here:
            reason = f"name: duplicate rule name (first at {first})"
            problems.append(doc.problem(loc + ("name",), reason))
    try:
        rule = Rule.model_validate(raw)
    except ValidationError as exc:
        return None, problems + validation_problems(doc, exc, loc, _VOCABULARY)
    for sub, reason in _rule_problems(rule, known):
        problems.append(doc.problem(loc + sub, f"{loc_text(sub)}: {reason}"))
    if problems:
        return None, problems
    return compile_rule(rule, doc.file, doc.line(loc)), []


def _rule_problems(rule: Rule, known: Directory | None) -> Iterator[tuple[Loc, str]]:
    terminals = [name for name in TERMINALS if getattr(rule, name) is not None]
    if len(terminals) > 1:
        yield (terminals[1],), f"only one of {', '.join(TERMINALS)}; '{terminals[0]}' is set too"
    if terminals and rule.proceed:
        yield ("continue",), f"has no effect: '{terminals[0]}' ends the evaluation"
    if rule.actions is not None:
        yield from _placeholder_problems(rule)
    if known is not None:
        yield from _directory_problems(rule, known)


def _captures(rule: Rule) -> set[str]:
    """The named groups of the rule's regexes outside any `not`: what `set` may use."""
    found: set[str] = set()
    for _, _, cond, negated in conditions(rule.match) if rule.match else ():
        if cond.regex is not None and not negated:
            found.update(re.compile(cond.regex).groupindex)
    return found


def _action_texts(actions: Actions) -> Iterator[tuple[Loc, str]]:
    """Every value in `set` that may hold placeholders, with its location."""
    for key in ("department", "topic", "sla", "assignee"):
        value = getattr(actions, key)
        if value is not None:
            yield ("set", key), value
    for i, tag in enumerate(actions.tags):
        yield ("set", "tags", i), tag
    for name, value in actions.fields.items():
        yield ("set", "fields", name), value


def _placeholder_problems(rule: Rule) -> Iterator[tuple[Loc, str]]:
    assert rule.actions is not None
    captured = _captures(rule)
    for loc, text in _action_texts(rule.actions):
        try:
            used = placeholders(text)
        except ValueError as exc:
            yield loc, str(exc)
            continue
        for name in used:
            if name in captured:
                continue
            if captured:
                have = ", ".join(sorted(captured))
                yield loc, f"unknown placeholder {{{name}}}: the rule's regexes capture {have}"
            else:
                yield loc, (
                    f"unknown placeholder {{{name}}}: the rule has no regex with a named group "
                    f"like (?P<{name}>...)"
                )


def _directory_problems(rule: Rule, known: Directory) -> Iterator[tuple[Loc, str]]:
    departments = list(known.departments)
    topics = list(known.topics)
    department = rule.actions.department if rule.actions else None
    if department is not None and not _names_any(department, departments):
        yield ("set", "department"), _unknown("department", department, departments)
    topic = rule.actions.topic if rule.actions else None
    if topic is not None and not _names_any(topic, topics):
        yield ("set", "topic"), _unknown("topic", topic, topics)
    for loc, key, cond, _ in conditions(rule.match, ("match",)) if rule.match else ():
        for value in cond.whole_values if key == "topic" else ():
            if known.topic(value) is None:
                yield loc, _unknown("topic", value, topics)


def _names_any(template: str, names: Iterable[str]) -> bool:
    """Whether the value, with any placeholder standing for any text, is one of `names`.

    Case is ignored, as `Directory.department` and `Directory.topic` ignore it.
    """
    parts = re.split(r"\{\w+\}", template.replace("{{", "\0").replace("}}", "\1"))
    literal = [re.escape(p.replace("\0", "{").replace("\1", "}")) for p in parts]
    pattern = re.compile(".+".join(literal), re.IGNORECASE)
    return any(pattern.fullmatch(name) for name in names)


def _unknown(kind: str, value: str, names: list[str]) -> str:
    close = difflib.get_close_matches(value, names, n=1)
    if close:
        return f"unknown {kind} '{value}' (did you mean '{close[0]}'?)"
    if "{" in value:
        return f"no {kind} in the directory fits '{value}'"
    return f"unknown {kind} '{value}'"
