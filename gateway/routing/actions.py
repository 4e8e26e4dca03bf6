"""What a matching rule does to the decision: its `set` values, compiled, with `{capture}`s.

A text value in `set` is a template: `{city}` is the named group `city` of one of the rule's
regexes that held (empty when none filled it), and literal braces are written doubled.
`placeholders` is also what the loader uses to check every name a rule's values use.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from gateway.routing.facts import Decision
from gateway.routing.schema import Actions


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
        """Set what this rule sets; tags and fields merge with those of earlier rules."""
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
