"""Admin-written YAML read with line numbers, and the `file:line: reason` problems it yields.

The routing rules and the directory are both YAML files that admins edit by hand, so both need
the same thing from a loader: every problem in the file at once, each with the line to look at.
This module owns that: `read_yaml` builds plain Python data from YAML *nodes* while recording
the line of every mapping key and list item by its path (`(0, "match", "subject", "regex")`),
and `validation_problems` turns a pydantic `ValidationError` into `Problem`s by looking the
error's location up in that table.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

# A location inside a document: mapping keys and list indexes from the root down.
Loc = tuple[str | int, ...]

# The C parser is much faster on large rule files; the pure-Python one behaves the same.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file, for an admin: `rules/10-topics.yaml:7: reason`."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class Document:
    """One YAML file as plain data, with the line of everything in it."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor that has one (a missing key has none)."""
        for end in range(len(loc), -1, -1):
            found = self.lines.get(loc[:end])
            if found is not None:
                return found
        return 1

    def problem(self, loc: Loc, reason: str) -> Problem:
        return Problem(self.file, self.line(loc), reason)


def read_yaml(path: Path) -> tuple[Document | None, list[Problem]]:
    """Read `path`; None with the problems when it cannot be parsed at all.

    Duplicate keys are reported (PyYAML would silently keep the last) but do not stop the read.
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file, 1, f"cannot read the file: {exc}")]
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        return None, [Problem(file, _error_line(exc), f"not valid YAML: {_error_text(exc)}")]
    builder = _Builder(file)
    try:
        data = builder.build(root, ()) if root is not None else None
    except yaml.YAMLError as exc:
        return None, [Problem(file, _error_line(exc), f"not valid YAML: {_error_text(exc)}")]
    except _Unreadable as exc:
        return None, [Problem(file, exc.line, f"not valid YAML: {exc.reason}")]
    return Document(file, data, builder.lines), builder.problems


def loc_text(loc: Loc) -> str:
    """`("match", "header", "X-Spam", "regex")` as `match.header.X-Spam.regex`, indexes as `[2]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validation_problems(
    doc: Document, exc: ValidationError, prefix: Loc = (), vocabulary: Iterable[str] = ()
) -> list[Problem]:
    """One problem per pydantic error, at the line of the key it is about.

    `prefix` is where the validated value sits in the document (a rule's list index);
    `vocabulary` is every key the schema knows, to suggest one for a misspelt key.
    """
    words = sorted(set(vocabulary))
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        where = loc_text(loc)
        reason = _describe(error, words)
        problems.append(doc.problem(prefix + loc, f"{where}: {reason}" if where else reason))
    return problems


def _describe(error: ErrorDetails, vocabulary: list[str]) -> str:
    """pydantic's message, reworded where the admin would otherwise see Python terms."""
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, vocabulary, n=1)
        return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"
    if kind == "missing":
        return "required key missing"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping, got {_kind_of(error['input'])}"
    if kind == "list_type":
        return f"expected a list, got {_kind_of(error['input'])}"
    if kind == "string_type":
        return f"expected a string, got {_kind_of(error['input'])} (quote it)"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_kind_of(error['input'])}"
    message = str(error["msg"])
    # Our own validators raise ValueError; pydantic prefixes their text with this.
    return message.removeprefix("Value error, ")


def _kind_of(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({value!r})"
    return f"{type(value).__name__} ({value!r})"


def _error_line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else 1


def _error_text(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"{context} {problem}".strip() if context else str(problem)
    return str(exc).splitlines()[0]


class _Unreadable(Exception):
    """YAML that parses but cannot become data; carries the line to report."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


class _Builder:
    """Nodes to plain data, noting lines by path; mapping keys are always their source text.

    Keys are kept as written rather than resolved, so that `on:` or `no:` stays a string key
    instead of becoming a boolean as YAML 1.1 would have it.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._constructor.construct_object(node, deep=True)
        if id(node) in self._open:
            # The node's own mark is the anchor's; the line of the key holding the alias is
            # where the admin must look.
            line = self.lines.get(loc[:-1], node.start_mark.line + 1)
            raise _Unreadable(line, "an alias refers to the collection it is in")
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)  # the composer makes no other kind
            return self._mapping(node, loc)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        written = {id(key) for key, _ in node.value}
        # Resolves `<<: *anchor` merge keys in place, as PyYAML's own constructor does: the
        # merged pairs come first, and a key written here overrides a merged one.
        self._constructor.flatten_mapping(node)
        result: dict[str, Any] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(self.file, line, "a key must be a plain word"))
                continue
            key = key_node.value
            if id(key_node) in written:
                if key in seen:
                    self.problems.append(Problem(self.file, line, f"duplicate key '{key}'"))
                seen.add(key)
            self.lines[loc + (key,)] = line
            result[key] = self.build(value_node, loc + (key,))
        return result
