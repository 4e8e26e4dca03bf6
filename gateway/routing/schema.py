"""The routing rule as admins write it in `rules/*.yaml`: pydantic models, nothing compiled.

A rules file is a list of rules:

    - name: fire alarms to the national fire team   # required, unique across all files
      match:                                        # optional; no match means every message
        to: support@telenta.example
        subject: {regex: "(?i)brandlarm|fire alarm"}
      set: {topic: Brandlarm, priority: high}
      continue: false                               # the default: the first matching rule wins

A *condition* on a text field is a plain scalar (meaning `equals`) or a mapping with exactly
one operator: `equals`, `contains`, `regex`, `one_of` or `not` (whose value is again a
condition). A *match* is a mapping of fields to conditions, all of which must hold; `all`,
`any` (lists of matches) and `not` (one match) nest to any depth. What each field and
operator means when a message is tested is documented in `gateway.routing.match`.

Cross-field checks that need a file position (placeholders, terminal actions, names known to
the directory) are done by `gateway.routing.loader`, which has the lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from gateway.routing.yamlsource import Loc
from gateway.values import Priority

OPERATORS = ("equals", "contains", "regex", "one_of", "not")
Terminal = Literal["quarantine", "drop", "reject"]
TERMINALS: tuple[Terminal, ...] = ("quarantine", "drop", "reject")


class _Strict(BaseModel):
    # Unknown keys are errors: a misspelt `subjet:` must not silently match everything.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_null(value: object, message: str) -> object:
    """A key written with nothing after it is a mistake, not the same as the key left out."""
    if value is None:
        raise ValueError(message)
    return value


def _scalar_means_equals(value: object) -> object:
    if isinstance(value, str):
        return {"equals": value}
    if isinstance(value, dict):
        return value
    # YAML reads `no` as false and `5` as a number; a list is most likely meant as one_of.
    hint = "for several values use one_of" if isinstance(value, list) else "put it in quotes"
    operators = ", ".join(OPERATORS)
    raise ValueError(f"expected a text or a mapping with one operator ({operators}); {hint}")


class Condition(_Strict):
    """One test on a text field; exactly one operator is set."""

    equals: str | None = None
    contains: str | None = Field(default=None, min_length=1)
    regex: str | None = None
    one_of: list[str] | None = Field(default=None, min_length=1)
    negated: TextCondition | None = Field(default=None, alias="not")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regex: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        given = [name for name in OPERATORS if self.operand(name) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            expected = ", ".join(OPERATORS)
            raise ValueError(f"a condition takes exactly one of {expected}; found {found}")
        return self

    def operand(self, name: str) -> str | list[str] | Condition | None:
        return self.negated if name == "not" else getattr(self, name)

    @property
    def operator(self) -> str:
        return next(name for name in OPERATORS if self.operand(name) is not None)

    @property
    def whole_values(self) -> list[str]:
        """What an `equals` or `one_of` compares with; [] for the other operators."""
        return [self.equals] if self.equals is not None else list(self.one_of or ())


TextCondition = Annotated[Condition, BeforeValidator(_scalar_means_equals)]


class Match(_Strict):
    """Field conditions and groups; all of them must hold. Empty matches every message."""

    to: TextCondition | None = None
    cc: TextCondition | None = None
    from_addr: TextCondition | None = Field(default=None, alias="from")
    from_domain: TextCondition | None = None
    subject: TextCondition | None = None
    body: TextCondition | None = None
    header: dict[str, TextCondition] | None = Field(default=None, min_length=1)
    has_attachment: StrictBool | None = None
    language: TextCondition | None = None
    organisation: TextCondition | None = None
    topic: TextCondition | None = None
    followup: StrictBool | None = None
    business_hours: StrictBool | None = None
    all_of: list[Match] | None = Field(default=None, alias="all", min_length=1)
    any_of: list[Match] | None = Field(default=None, alias="any", min_length=1)
    negated: Match | None = Field(default=None, alias="not")

    @field_validator("*", mode="before")
    @classmethod
    def _given(cls, value: object) -> object:
        # `subject:` with the value forgotten would otherwise test nothing and match all mail.
        return _not_null(value, "no condition given")


# The match fields that take a text condition, by the key admins write.
TEXT_FIELDS = (
    "to", "cc", "from", "from_domain", "subject", "body", "language", "organisation", "topic",
)  # fmt: skip
BOOL_FIELDS = ("has_attachment", "followup", "business_hours")


class Actions(_Strict):
    """What a matching rule sets on the decision; text values may use `{capture}` placeholders."""

    department: str | None = Field(default=None, min_length=1)
    topic: str | None = Field(default=None, min_length=1)
    priority: Priority | None = None
    sla: str | None = Field(default=None, min_length=1)
    assignee: str | None = Field(default=None, min_length=1)
    tags: list[Annotated[str, Field(min_length=1)]] = []
    fields: dict[str, str] = {}
    confirm: StrictBool | None = None


class Rule(_Strict):
    """One rule; `set` and at most one terminal action say what happens when it matches."""

    name: str = Field(min_length=1)
    match: Match | None = None
    actions: Actions | None = Field(default=None, alias="set")
    proceed: StrictBool = Field(default=False, alias="continue")
    quarantine: str | None = Field(default=None, min_length=1)
    drop: str | None = Field(default=None, min_length=1)
    reject: str | None = Field(default=None, min_length=1)

    @field_validator("*", mode="before")
    @classmethod
    def _given(cls, value: object) -> object:
        # `drop:` with the reason forgotten would otherwise make the rule drop nothing.
        return _not_null(value, "no value given (leave the key out if it is not wanted)")

    @field_validator("reject")
    @classmethod
    def _smtp_safe(cls, value: str | None) -> str | None:
        # The text goes verbatim into an SMTP reply line: one line of printable ASCII.
        if value is not None and not (value.isascii() and value.isprintable()):
            raise ValueError("an SMTP reply text must be one line of printable ASCII")
        return value

    @property
    def terminal(self) -> tuple[Terminal, str] | None:
        """The first terminal action set, as (action, reason); the loader rejects more than one."""
        for name in TERMINALS:
            reason = getattr(self, name)
            if reason is not None:
                return name, reason
        return None


# (location, field, condition, whether an odd number of `not`s encloses it)
Found = tuple[Loc, str, Condition, bool]


def conditions(match: Match, loc: Loc = ()) -> Iterator[Found]:
    """Every text condition in `match`, as (location, field, condition, under a `not`).

    Locations use the keys as written in YAML, so the loader can find their lines.
    """
    yield from _conditions(match, loc, negated=False)


def _conditions(match: Match, loc: Loc, negated: bool) -> Iterator[Found]:
    for key in TEXT_FIELDS:
        condition = getattr(match, "from_addr" if key == "from" else key)
        if condition is not None:
            yield from _nested(condition, loc + (key,), key, negated)
    for name, condition in (match.header or {}).items():
        yield from _nested(condition, loc + ("header", name), "header", negated)
    for group, members in (("all", match.all_of), ("any", match.any_of)):
        for index, member in enumerate(members or ()):
            yield from _conditions(member, loc + (group, index), negated)
    if match.negated is not None:
        yield from _conditions(match.negated, loc + ("not",), not negated)


def _nested(condition: Condition, loc: Loc, key: str, negated: bool) -> Iterator[Found]:
    yield loc, key, condition, negated
    if condition.negated is not None:
        yield from _nested(condition.negated, loc + ("not",), key, not negated)


def vocabulary() -> set[str]:
    """Every key the rule schema knows, for suggesting one when a key is misspelt."""
    words: set[str] = set()
    for model in (Condition, Match, Actions, Rule):
        words.update(info.alias or name for name, info in model.model_fields.items())
    return words


Condition.model_rebuild()
Match.model_rebuild()
