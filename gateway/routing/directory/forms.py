"""What customers write as a form: a `Topic:` line and `Key: value` fields in a mail's body.

Telenta's portal makes new customers fill in fields (Kommun/Företag, Anläggning, När
inträffade felet) and name a help topic; the same lines arrive by mail, written by the portal
or by hand. This module owns recognising them: a field by its name, label or an alias, and
labels compared without case, surrounding punctuation or doubled spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class FieldSpec:
    """A custom field: `name` in code, `label` as customers see it, `aliases` they may write."""

    name: str
    label: str
    aliases: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [self.name, self.label, *self.aliases]


# The fields Telenta's portal makes new customers fill in, used when the file names none.
DEFAULT_FIELDS = (
    FieldSpec("municipality", "Kommun/Företag", ["Kommun", "Företag", "Municipality", "Company"]),
    FieldSpec("facility", "Anläggning", ["Facility", "Site", "Installation"]),
    FieldSpec("occurred_at", "När inträffade felet", ["Inträffade", "When did the fault occur"]),
)

# A line in the body that names the topic, as the portal's form and customers write it.
_TOPIC_LINE = re.compile(
    r"^[ \t]*(?:[-*•][ \t]*)?(?:help[ \t]+topic|topic|hjälpämnesrubrik|hjälpämne|ämne|affärsområde)"
    r"[ \t]*:[ \t]*(.+?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
# A `Key: value` line; the key is words, spaces and slashes, optionally ending in `?`.
_FIELD_LINE = re.compile(
    r"^[ \t]*(?:[-*•][ \t]*)?([^\s:>][^:\n]{0,60}?)\??[ \t]*:[ \t]*(.*?)[ \t]*$"
)
_SPACES = re.compile(r"\s+")


def label_key(text: str) -> str:
    """Labels compare without case, surrounding punctuation or doubled spaces."""
    return _SPACES.sub(" ", text.strip().strip("?*:").strip()).casefold()


def topic_lines(body: str) -> Iterator[str]:
    """The values of the body's `Topic:`/`Ämne:`/`Hjälpämne:` lines, in order."""
    for line in _TOPIC_LINE.finditer(body):
        yield line.group(1)


def parse_fields(
    body: str, names: Iterable[str], specs: Iterable[FieldSpec] = DEFAULT_FIELDS
) -> dict[str, str]:
    """The values of the fields `names` from `Key: value` lines of `body`.

    A field is recognised by its name, its label or an alias, ignoring case; a name that is no
    known field is looked for as written. Quoted lines (`> ...`) are skipped, the first
    non-empty value of a field wins, and the result is keyed by the names as asked for.
    """
    by_name = {spec.name: spec for spec in specs}
    wanted: dict[str, str] = {}
    for name in names:
        spec = by_name.get(name)
        for label in spec.labels if spec else [name]:
            wanted.setdefault(label_key(label), name)
    found: dict[str, str] = {}
    for line in body.splitlines():
        parsed = _FIELD_LINE.match(line)
        if parsed is None or not parsed.group(2):
            continue
        asked = wanted.get(label_key(parsed.group(1)))
        if asked is not None and asked not in found:
            found[asked] = parsed.group(2)
    return found
