"""Testing one message against the rules: `Facts` in, `Decision` out, compiled rules between.

This module owns the order in which rules run, and doing that fast: at load each rule
becomes a `CompiledRule` (its match a test from `gateway.routing.match`, its `set` values
templates from `gateway.routing.actions`), and a `RuleSet` keeps, for each of our mailboxes,
the rules that can apply to it, so the others are never tried.

Rules run in order; the first that matches decides unless it says `continue: true`, in which
case later matching rules override its settings, except `tags` and `fields`, which merge.
`quarantine`, `drop` and `reject` end the evaluation whatever `continue` says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from gateway.routing.actions import CompiledActions
from gateway.routing.facts import Action, Decision, Facts
from gateway.routing.match import compile_match
from gateway.routing.schema import Match, Rule
from gateway.routing.view import Test, View


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
    test, _ = compile_match(match)
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
    view = View(facts)
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
