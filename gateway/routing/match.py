"""What a rule's `match` means when it meets a message, compiled to a tree of small closures.

At load each match becomes one test, its conditions ordered cheapest first, run against a
`gateway.routing.view.View` of the message.

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
"""

from __future__ import annotations

import re
from operator import attrgetter

from gateway.routing.schema import Condition, Match
from gateway.routing.view import FIELDS, Getter, Test, View, header_getters

_OPERATOR_COST = {"equals": 0, "one_of": 0, "contains": 1, "regex": 2, "not": 0}


def compile_match(match: Match) -> tuple[Test, int]:
    """All of a match's conditions and groups as one test, the cheap ones tried first."""
    parts: list[tuple[int, Test]] = []
    for key, (raw, folded, field_cost) in FIELDS.items():
        cond = getattr(match, "from_addr" if key == "from" else key)
        if cond is not None:
            test, cost = _condition(cond, raw, folded, domain=key == "from_domain")
            parts.append((field_cost + cost, test))
    for name, cond in (match.header or {}).items():
        test, cost = _condition(cond, *header_getters(name), domain=False)
        parts.append((4 + cost, test))
    for name in ("has_attachment", "followup", "business_hours"):
        wanted = getattr(match, name)
        if wanted is not None:
            parts.append((0, _flag(name, wanted)))
    for member in match.all_of or ():
        test, cost = compile_match(member)
        parts.append((cost, test))
    if match.any_of:
        parts.append(_any([compile_match(member) for member in match.any_of]))
    if match.negated is not None:
        inner, cost = compile_match(match.negated)
        parts.append((cost, _not(inner)))
    # Stable: equally cheap tests keep the order the admin wrote them in.
    parts.sort(key=lambda part: part[0])
    return _all([test for _, test in parts]), sum(cost for cost, _ in parts)


def _condition(cond: Condition, raw: Getter, folded: Getter, domain: bool) -> tuple[Test, int]:
    """A test for one condition on one field, and its cost relative to other tests."""
    operator = cond.operator
    cost = _OPERATOR_COST[operator]
    if operator == "not":
        assert cond.negated is not None
        inner, inner_cost = _condition(cond.negated, raw, folded, domain)
        return _not(inner), inner_cost
    if operator in ("equals", "one_of"):
        wanted = {value.strip().lower() for value in cond.whole_values}
        return _equals(wanted, folded, domain), cost
    if operator == "contains":
        assert cond.contains is not None
        return _contains(cond.contains.lower(), folded), cost
    assert cond.regex is not None
    return _regex(re.compile(cond.regex), raw), cost


def _not(inner: Test) -> Test:
    # Captures inside a `not` never reach the actions: what held is what was not wanted.
    return lambda view, caps: not inner(view, {})


def _equals(wanted: set[str], folded: Getter, domain: bool) -> Test:
    if domain and any(w.startswith(".") for w in wanted):
        exact = frozenset(w.lstrip(".") for w in wanted)
        suffixes = tuple(w for w in wanted if w.startswith("."))

        def in_domain(view: View, caps: dict[str, str]) -> bool:
            return any(v in exact or v.endswith(suffixes) for v in folded(view))

        return in_domain
    if len(wanted) == 1:
        (only,) = wanted
        return lambda view, caps: only in folded(view)
    choices = frozenset(wanted)
    return lambda view, caps: not choices.isdisjoint(folded(view))


def _contains(needle: str, folded: Getter) -> Test:
    def contains(view: View, caps: dict[str, str]) -> bool:
        for value in folded(view):
            if needle in value:
                return True
        return False

    return contains


def _regex(pattern: re.Pattern[str], raw: Getter) -> Test:
    search = pattern.search
    captures = bool(pattern.groupindex)

    def matches(view: View, caps: dict[str, str]) -> bool:
        for value in raw(view):
            found = search(value)
            if found is not None:
                if captures:
                    caps.update((k, v) for k, v in found.groupdict().items() if v is not None)
                return True
        return False

    return matches


def _flag(name: str, wanted: bool) -> Test:
    get = attrgetter(name)
    return lambda view, caps: bool(get(view)) == wanted


def _always(view: View, caps: dict[str, str]) -> bool:
    return True


def _all(tests: list[Test]) -> Test:
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]

    def every(view: View, caps: dict[str, str]) -> bool:
        for test in tests:
            if not test(view, caps):
                return False
        return True

    return every


def _any(members: list[tuple[Test, int]]) -> tuple[int, Test]:
    tests = [test for test, _ in members]

    def some(view: View, caps: dict[str, str]) -> bool:
        for test in tests:
            # A branch that fails half-way must not leave its captures behind.
            scratch: dict[str, str] = {}
            if test(view, scratch):
                caps.update(scratch)
                return True
        return False

    return sum(cost for _, cost in members), some
