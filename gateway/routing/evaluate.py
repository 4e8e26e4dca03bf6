"""Testing one message against the rules: `Facts` in, `Decision` out, compiled tests in between.

This module owns what a rule *means* when it meets a message, and doing that fast. At load
each rule's match becomes a tree of small closures, cheapest test first; a `RuleSet` keeps,
for each of our mailboxes, the rules that can apply to it; and a message's values are
lower-cased only when some rule reads them.

Match fields, all tested against the facts of one evaluation:

    to              the one of our mailboxes this evaluation is for (addressed by To or Cc)
    cc              every Cc address; the condition holds if it holds for any of them
    from            the sender's address
    from_domain     the sender's domain; `example.com` is that domain only, `.example.com`
                    is example.com and every subdomain of it (for equals and one_of)
    subject, body   the text as given (the body is the new text of the message)
    header          {Name: condition}: any value of that header, name without case
    language, organisation
    topic           the help topic known so far: from the facts, or set by an earlier rule
                    that continued
    has_attachment, followup, business_hours    true or false

Operators: `equals` and `one_of` compare whole values and `contains` looks for a substring,
all three ignoring case; `regex` searches (use `^...$` to anchor) the text as given, except
that addresses and domains are always lower-cased, so write `(?i)` for case-insensitive text.
A field with no value (no such header, no language known) fails every operator, so
`{not: ...}` on it holds. Named groups of regexes that held, outside any `not`, are the
captures a rule's `set` values use as `{name}`; a capture no regex filled renders empty.

Rules run in order; the first that matches decides unless it says `continue: true`, in which
case later matching rules override its settings, except `tags` and `fields`, which merge.
`quarantine`, `drop` and `reject` end the evaluation whatever `continue` says.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Generic, Literal, TypeVar

from gateway.routing.schema import Actions, Condition, Match, Rule

Action = Literal["deliver", "quarantine", "drop", "reject"]
# A compiled test: does the message hold? Regexes that hold add their named groups to the dict.
Test = Callable[["_View", dict[str, str]], bool]
Getter = Callable[["_View"], tuple[str, ...]]


@dataclass
class Facts:
    """What routing may look at in one message, for one of our mailboxes.

    `mailbox` is our base address (without a reply token); `body` is the new text of the
    message, without quoted history; `to` and `cc` are the headers' addresses.
    """

    mailbox: str
    from_addr: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    # Header names in lower case, each with all its values.
    headers: Mapping[str, list[str]] = field(default_factory=dict)
    has_attachment: bool = False
    language: str | None = None
    organisation: str | None = None
    topic: str | None = None
    followup: bool = False
    business_hours: bool = True


@dataclass
class Decision:
    """What the rules (and, through `route`, the directory) decided for one message."""

    matched: list[str] = field(default_factory=list)
    department: str | None = None
    topic: str | None = None
    priority: str | None = None
    sla: str | None = None
    assignee: str | None = None
    tags: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    confirm: bool = True
    action: Action = "deliver"
    action_reason: str | None = None
    # Where `department` came from: "rule", "organisation", "topic" or "default".
    department_from: str | None = None
    # Required fields of the topic that a new customer did not give (filled by `route`).
    missing_fields: list[str] = field(default_factory=list)
    # Why `route` chose what it chose, for `postdesk route` and the ticket's event log.
    notes: list[str] = field(default_factory=list)


# -- the message, normalised lazily --------------------------------------------------------

T = TypeVar("T")


class _lazy(Generic[T]):
    """`functools.cached_property` without its lock (Python 3.11 takes one on every first
    read), which costs more than most of the tests it guards. A view is never shared
    between threads, so there is nothing to lock against."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__

    def __get__(self, view: Any, owner: type | None = None) -> T:
        value = self.compute(view)
        # The instance attribute now shadows this descriptor: later reads are plain lookups.
        view.__dict__[self.name] = value
        return value


class _View:
    """One evaluation's facts as tuples of values, each computed the first time a rule asks."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.topic = facts.topic
        self.has_attachment = facts.has_attachment
        self.followup = facts.followup
        self.business_hours = facts.business_hours
        self._headers: dict[tuple[str, bool], tuple[str, ...]] = {}

    @_lazy
    def mailbox(self) -> tuple[str, ...]:
        return (self.facts.mailbox.strip().lower(),)

    @_lazy
    def cc(self) -> tuple[str, ...]:
        return tuple(address.strip().lower() for address in self.facts.cc)

    @_lazy
    def sender(self) -> tuple[str, ...]:
        return (self.facts.from_addr.strip().lower(),)

    @_lazy
    def sender_domain(self) -> tuple[str, ...]:
        return (self.sender[0].rpartition("@")[2],)

    @_lazy
    def subject(self) -> tuple[str, ...]:
        return (self.facts.subject,)

    @_lazy
    def subject_folded(self) -> tuple[str, ...]:
        return (self.facts.subject.lower(),)

    @_lazy
    def body(self) -> tuple[str, ...]:
        return (self.facts.body,)

    @_lazy
    def body_folded(self) -> tuple[str, ...]:
        return (self.facts.body.lower(),)

    @_lazy
    def language(self) -> tuple[str, ...]:
        return _optional(self.facts.language, fold=True)

    @_lazy
    def organisation(self) -> tuple[str, ...]:
        return _optional(self.facts.organisation, fold=False)

    @_lazy
    def organisation_folded(self) -> tuple[str, ...]:
        return _optional(self.facts.organisation, fold=True)

    # The topic can change between rules, so it is not cached.
    @property
    def topic_value(self) -> tuple[str, ...]:
        return _optional(self.topic, fold=False)

    @property
    def topic_folded(self) -> tuple[str, ...]:
        return _optional(self.topic, fold=True)

    def header(self, name: str, folded: bool) -> tuple[str, ...]:
        values = self._headers.get((name, folded))
        if values is None:
            given = self.facts.headers.get(name, ())
            values = tuple(v.lower() for v in given) if folded else tuple(given)
            self._headers[(name, folded)] = values
        return values


def _optional(value: str | None, fold: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value.lower(),) if fold else (value,)


# Per text field: how to get its values as given and folded, and how costly testing it is.
# Addresses are lower-cased in both forms; cheap fields are tested before the body.
_FIELDS: dict[str, tuple[Getter, Getter, int]] = {
    "to": (attrgetter("mailbox"), attrgetter("mailbox"), 1),
    "cc": (attrgetter("cc"), attrgetter("cc"), 2),
    "from": (attrgetter("sender"), attrgetter("sender"), 1),
    "from_domain": (attrgetter("sender_domain"), attrgetter("sender_domain"), 1),
    "subject": (attrgetter("subject"), attrgetter("subject_folded"), 3),
    "body": (attrgetter("body"), attrgetter("body_folded"), 8),
    "language": (attrgetter("language"), attrgetter("language"), 1),
    "organisation": (attrgetter("organisation"), attrgetter("organisation_folded"), 1),
    "topic": (attrgetter("topic_value"), attrgetter("topic_folded"), 1),
}
_OPERATOR_COST = {"equals": 0, "one_of": 0, "contains": 1, "regex": 2, "not": 0}


# -- compiling conditions ------------------------------------------------------------------


def _always(view: _View, caps: dict[str, str]) -> bool:
    return True


def _condition(cond: Condition, raw: Getter, folded: Getter, domain: bool) -> tuple[Test, int]:
    """A test for one condition on one field, and its cost relative to other tests."""
    operator = cond.operator
    cost = _OPERATOR_COST[operator]
    if operator == "not":
        assert cond.negated is not None
        inner, inner_cost = _condition(cond.negated, raw, folded, domain)
        # Captures inside a `not` never reach the actions: what held is what was not wanted.
        return (lambda view, caps: not inner(view, {})), inner_cost
    if operator in ("equals", "one_of"):
        wanted = {value.strip().lower() for value in cond.whole_values}
        return _equals(wanted, folded, domain), cost
    if operator == "contains":
        assert cond.contains is not None
        return _contains(cond.contains.lower(), folded), cost
    assert cond.regex is not None
    return _regex(re.compile(cond.regex), raw), cost


def _equals(wanted: set[str], folded: Getter, domain: bool) -> Test:
    if domain and any(w.startswith(".") for w in wanted):
        exact = frozenset(w.lstrip(".") for w in wanted)
        suffixes = tuple(w for w in wanted if w.startswith("."))

        def in_domain(view: _View, caps: dict[str, str]) -> bool:
            return any(v in exact or v.endswith(suffixes) for v in folded(view))

        return in_domain
    if len(wanted) == 1:
        (only,) = wanted
        return lambda view, caps: only in folded(view)
    choices = frozenset(wanted)
    return lambda view, caps: not choices.isdisjoint(folded(view))


def _contains(needle: str, folded: Getter) -> Test:
    def contains(view: _View, caps: dict[str, str]) -> bool:
        for value in folded(view):
            if needle in value:
                return True
        return False

    return contains


def _regex(pattern: re.Pattern[str], raw: Getter) -> Test:
    search = pattern.search
    captures = bool(pattern.groupindex)

    def matches(view: _View, caps: dict[str, str]) -> bool:
        for value in raw(view):
            found = search(value)
            if found is not None:
                if captures:
                    caps.update((k, v) for k, v in found.groupdict().items() if v is not None)
                return True
        return False

    return matches


def _header_getters(name: str) -> tuple[Getter, Getter]:
    key = name.lower()
    return (lambda view: view.header(key, False)), (lambda view: view.header(key, True))


def _flag(name: str, wanted: bool) -> Test:
    get = attrgetter(name)
    return lambda view, caps: bool(get(view)) == wanted


def _match(match: Match) -> tuple[Test, int]:
    """All of a match's conditions and groups as one test, the cheap ones tried first."""
    parts: list[tuple[int, Test]] = []
    for key, (raw, folded, field_cost) in _FIELDS.items():
        cond = getattr(match, "from_addr" if key == "from" else key)
        if cond is not None:
            test, cost = _condition(cond, raw, folded, domain=key == "from_domain")
            parts.append((field_cost + cost, test))
    for name, cond in (match.header or {}).items():
        test, cost = _condition(cond, *_header_getters(name), domain=False)
        parts.append((4 + cost, test))
    for name in ("has_attachment", "followup", "business_hours"):
        wanted = getattr(match, name)
        if wanted is not None:
            parts.append((0, _flag(name, wanted)))
    for member in match.all_of or ():
        test, cost = _match(member)
        parts.append((cost, test))
    if match.any_of:
        parts.append(_any([_match(member) for member in match.any_of]))
    if match.negated is not None:
        inner, cost = _match(match.negated)
        parts.append((cost, lambda view, caps: not inner(view, {})))
    # Stable: equally cheap tests keep the order the admin wrote them in.
    parts.sort(key=lambda part: part[0])
    return _all([test for _, test in parts]), sum(cost for cost, _ in parts)


def _all(tests: list[Test]) -> Test:
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]

    def every(view: _View, caps: dict[str, str]) -> bool:
        for test in tests:
            if not test(view, caps):
                return False
        return True

    return every


def _any(members: list[tuple[Test, int]]) -> tuple[int, Test]:
    tests = [test for test, _ in members]

    def some(view: _View, caps: dict[str, str]) -> bool:
        for test in tests:
            # A branch that fails half-way must not leave its captures behind.
            scratch: dict[str, str] = {}
            if test(view, scratch):
                caps.update(scratch)
                return True
        return False

    return sum(cost for _, cost in members), some


# -- actions -------------------------------------------------------------------------------


class _Blank(dict[str, str]):
    """Captures for rendering: one that no regex filled (another `any` branch) is empty."""

    def __missing__(self, key: str) -> str:
        return ""


def placeholders(text: str) -> list[str]:
    """The `{name}` placeholders in an action value; ValueError if it is not a valid template.

    Literal braces are written doubled, `{{` and `}}`.
    """
    names = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{exc}; write a literal brace twice, {{{{ or }}}}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError("a placeholder is a capture's name in braces, like {city}")
        names.append(name)
    return names


class Template:
    """An action value, rendered with a matching rule's captures."""

    __slots__ = ("text", "dynamic")

    def __init__(self, text: str) -> None:
        self.dynamic = bool(placeholders(text))
        # Without placeholders, only the doubled braces need undoing, once.
        self.text = text if self.dynamic else text.format()

    def render(self, caps: dict[str, str]) -> str:
        return self.text.format_map(_Blank(caps)) if self.dynamic else self.text

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def _template(text: str | None) -> Template | None:
    return None if text is None else Template(text)


@dataclass(frozen=True, slots=True)
class CompiledActions:
    department: Template | None
    topic: Template | None
    priority: str | None
    sla: Template | None
    assignee: Template | None
    tags: tuple[Template, ...]
    fields: tuple[tuple[str, Template], ...]
    confirm: bool | None

    @classmethod
    def of(cls, actions: Actions) -> CompiledActions:
        return cls(
            department=_template(actions.department),
            topic=_template(actions.topic),
            priority=actions.priority,
            sla=_template(actions.sla),
            assignee=_template(actions.assignee),
            tags=tuple(Template(tag) for tag in actions.tags),
            fields=tuple((name, Template(value)) for name, value in actions.fields.items()),
            confirm=actions.confirm,
        )

    def apply(self, decision: Decision, caps: dict[str, str]) -> None:
        if self.department is not None:
            decision.department = self.department.render(caps)
            decision.department_from = "rule"
        if self.topic is not None:
            decision.topic = self.topic.render(caps)
        if self.priority is not None:
            decision.priority = self.priority
        if self.sla is not None:
            decision.sla = self.sla.render(caps)
        if self.assignee is not None:
            decision.assignee = self.assignee.render(caps)
        for template in self.tags:
            tag = template.render(caps)
            if tag and tag not in decision.tags:
                decision.tags.append(tag)
        for name, template in self.fields:
            decision.fields[name] = template.render(caps)
        if self.confirm is not None:
            decision.confirm = self.confirm


# -- rules and rule sets -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    file: str
    line: int
    test: Test
    actions: CompiledActions | None
    terminal: tuple[Action, str] | None
    proceed: bool
    # The mailboxes the rule is limited to by a plain `to:`; None means any mailbox.
    mailboxes: frozenset[str] | None

    def __repr__(self) -> str:
        return f"<rule {self.name!r} at {self.file}:{self.line}>"


def compile_rule(rule: Rule, file: str = "<rules>", line: int = 0) -> CompiledRule:
    """One validated rule ready to test; a plain `to:` becomes an index entry, not a test."""
    match = rule.match or Match()
    mailboxes = None
    to = match.to
    if to is not None and to.operator in ("equals", "one_of"):
        mailboxes = frozenset(value.strip().lower() for value in to.whole_values)
        match = match.model_copy(update={"to": None})
    test, _ = _match(match)
    return CompiledRule(
        name=rule.name,
        file=file,
        line=line,
        test=test,
        actions=CompiledActions.of(rule.actions) if rule.actions is not None else None,
        terminal=rule.terminal,
        proceed=rule.proceed,
        mailboxes=mailboxes,
    )


class RuleSet:
    """Rules in order, with each mailbox's candidates precomputed so others are never tried."""

    def __init__(self, rules: Iterable[CompiledRule] = (), files: Sequence[str] = ()) -> None:
        self.rules = tuple(rules)
        self.files = tuple(files)
        self._by_name = {rule.name: rule for rule in self.rules}
        self._anywhere = tuple(rule for rule in self.rules if rule.mailboxes is None)
        boxes = {box for rule in self.rules for box in rule.mailboxes or ()}
        self._by_mailbox = {
            box: tuple(r for r in self.rules if r.mailboxes is None or box in r.mailboxes)
            for box in boxes
        }

    def candidates(self, mailbox: str) -> tuple[CompiledRule, ...]:
        """The rules that can match mail for `mailbox` (already folded), in order."""
        return self._by_mailbox.get(mailbox, self._anywhere)

    def rule(self, name: str) -> CompiledRule | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[CompiledRule]:
        return iter(self.rules)


def evaluate(ruleset: RuleSet, facts: Facts) -> Decision:
    """Run the rules for one mailbox's view of a message; change nothing but the result."""
    view = _View(facts)
    decision = Decision()
    caps: dict[str, str] = {}
    for rule in ruleset.candidates(view.mailbox[0]):
        if not rule.test(view, caps):
            if caps:
                caps.clear()
            continue
        decision.matched.append(rule.name)
        if rule.actions is not None:
            rule.actions.apply(decision, caps)
            if decision.topic is not None:
                view.topic = decision.topic
        caps = {}
        if rule.terminal is not None:
            decision.action, decision.action_reason = rule.terminal
            break
        if not rule.proceed:
            break
    return decision
