"""One evaluation's facts as the compiled tests read them: tuples of values, computed lazily.

A message's values are lower-cased (for `equals`, `one_of`, `contains`) only when some rule
reads them, and then once; a rule set that never looks at the body never folds it. `FIELDS`
says, for each text field a match can name, how to get its values as given and folded, and
how costly a test on it is, so that cheap fields are tested first.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Generic, TypeVar

from gateway.routing.facts import Facts

# A compiled test: does the message hold? Regexes that hold add their named groups to the dict.
Test = Callable[["View", dict[str, str]], bool]
Getter = Callable[["View"], tuple[str, ...]]

T = TypeVar("T")


class _lazy(Generic[T]):
    """`functools.cached_property` without its lock (Python 3.11 takes one on every first
    read), which costs more than most of the tests it guards. A view is never shared
    between threads, so there is nothing to lock against."""

    def __init__(self, compute: Callable[[View], T]) -> None:
        self.compute = compute
        self.name = compute.__name__

    def __get__(self, view: View, owner: type | None = None) -> T:
        value = self.compute(view)
        # The instance attribute now shadows this descriptor: later reads are plain lookups.
        view.__dict__[self.name] = value
        return value


class View:
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
FIELDS: dict[str, tuple[Getter, Getter, int]] = {
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


def header_getters(name: str) -> tuple[Getter, Getter]:
    """How to get header `name`'s values, as given and folded (names compare without case)."""
    key = name.lower()
    return (lambda view: view.header(key, False)), (lambda view: view.header(key, True))
