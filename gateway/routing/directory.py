"""Who is who for routing: departments, customer organisations and help topics.

This module owns `config/directory.yaml` and the lookups the router needs from it:

- *departments* form a tree per business area: a national team (`fire-national`) with local
  teams under it (`fire-stockholm`). Each has a manager, who answers for tickets not going
  stale, and member agents. A ticket is handed down the tree by people, not by this code.
- *organisations* are existing customers. Their users are known by hand-added member
  addresses or, failing that, by e-mail domain (subdomains included), and most have a
  responsible department that gets all their tickets, whatever the topic.
- *help topics* are the business areas a new customer chooses from. A topic names the
  national department that takes new customers' tickets, the fields such a customer must
  give (Kommun/Företag, Anläggning, När inträffade felet) and the words that recognise it
  in a subject line.
- *fields* are those custom fields: a short name used in code and rules, the label shown
  to customers and the other labels a customer might write instead.

`Directory` can also be built in code (tests, or organisations kept in the database);
only `load_directory` checks the references between entries, with file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gateway.i18n.formats import check_zone
from gateway.routing.yamlsource import Loc, Problem, read_yaml, validation_problems

DEFAULT_DIRECTORY = Path("config/directory.yaml")


@dataclass
class Department:
    name: str
    parent: str | None = None
    manager: str | None = None
    members: list[str] = field(default_factory=list)
    title: str = ""
    # Language and time zone of the mail and pages of its customers and agents, when set.
    language: str | None = None
    timezone: str | None = None


@dataclass
class Organisation:
    name: str
    domains: list[str] = field(default_factory=list)
    department: str | None = None
    # The customer's own people who see all the organisation's tickets.
    managers: list[str] = field(default_factory=list)
    # Customer addresses added by hand, e.g. a user writing from a private address.
    members: list[str] = field(default_factory=list)
    # Language of the mail its people get (en, sv, ro), unless a customer has their own.
    language: str | None = None
    # IANA time zone its people read times in (Europe/Bucharest), unless a customer has their own.
    timezone: str | None = None


@dataclass
class Topic:
    name: str
    department: str | None = None
    required_fields: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


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


def _key(text: str) -> str:
    """Labels compare without case, surrounding punctuation or doubled spaces."""
    return _SPACES.sub(" ", text.strip().strip("?*:").strip()).casefold()


class Directory:
    """Departments, organisations, topics and fields, indexed for the lookups routing makes."""

    def __init__(
        self,
        departments: Iterable[Department] = (),
        organisations: Iterable[Organisation] = (),
        topics: Iterable[Topic] = (),
        fields: Iterable[FieldSpec] | None = None,
        support_manager: str | None = None,
        default_department: str | None = None,
    ) -> None:
        self.departments = {d.name: d for d in departments}
        self.organisations = {o.name: o for o in organisations}
        self.topics = {t.name: t for t in topics}
        self.fields = {f.name: f for f in (DEFAULT_FIELDS if fields is None else fields)}
        # The overall support manager who follows up that every ticket gets answered.
        self.support_manager = support_manager
        # Where a ticket goes that neither a rule, an organisation nor a topic routes.
        self.default_department = default_department
        self._index()

    def _index(self) -> None:
        self._department_by_key = {name.casefold(): d for name, d in self.departments.items()}
        self._children: dict[str, list[Department]] = {}
        for department in self.departments.values():
            if department.parent is not None:
                self._children.setdefault(department.parent, []).append(department)
        # Where two organisations claim the same address or domain, the first keeps it.
        self._by_member: dict[str, Organisation] = {}
        self._by_domain: dict[str, Organisation] = {}
        for org in self.organisations.values():
            for address in (*org.members, *org.managers):
                self._by_member.setdefault(address.strip().lower(), org)
            for domain in org.domains:
                self._by_domain.setdefault(domain.strip().lower().lstrip("."), org)
        self._topic_by_name = {_key(t.name): t for t in self.topics.values()}
        self._topic_by_word: dict[str, Topic] = {}
        for topic in self.topics.values():
            for word in (topic.name, *topic.aliases):
                self._topic_by_word.setdefault(_key(word), topic)
        words = sorted(self._topic_by_word, key=len, reverse=True)
        # A whole word or phrase; up to four more letters allow inflections ("brandlarmet").
        self._subject_words = (
            re.compile(r"(?<!\w)(" + "|".join(map(re.escape, words)) + r")\w{0,4}(?!\w)", re.I)
            if words
            else None
        )

    # -- departments -----------------------------------------------------------------------

    def department(self, name: str) -> Department | None:
        """By name, ignoring case: a `{city}` capture keeps the case the customer wrote."""
        return self.departments.get(name) or self._department_by_key.get(name.casefold())

    def ancestors(self, name: str) -> list[Department]:
        """The parent, its parent and so on up to the national team; [] for unknown names."""
        found: list[Department] = []
        current = self.departments.get(name)
        while current is not None and current.parent is not None:
            parent = self.departments.get(current.parent)
            # A directory built in code is not checked; a cycle must not hang the caller.
            if parent is None or parent in found or parent.name == name:
                break
            found.append(parent)
            current = parent
        return found

    def children(self, name: str) -> list[Department]:
        return list(self._children.get(name, ()))

    # -- organisations ---------------------------------------------------------------------

    def organisation(self, name: str) -> Organisation | None:
        return self.organisations.get(name)

    def organisation_for(self, address: str) -> Organisation | None:
        """By a hand-added member address first, then by domain, the longest domain winning."""
        address = address.strip().lower()
        org = self._by_member.get(address)
        if org is not None:
            return org
        labels = address.rpartition("@")[2].split(".")
        for start in range(len(labels) - 1):
            org = self._by_domain.get(".".join(labels[start:]))
            if org is not None:
                return org
        return None

    # -- topics ----------------------------------------------------------------------------

    def topic(self, name: str) -> Topic | None:
        """A topic by its name, ignoring case (aliases are for recognising text, not naming)."""
        return self._topic_by_name.get(_key(name))

    def topic_for_text(self, subject: str, body: str) -> Topic | None:
        """A `Topic:`/`Ämne:`/`Hjälpämne:` line in the body, else a topic word in the subject."""
        for line in _TOPIC_LINE.finditer(body):
            topic = self._topic_by_word.get(_key(line.group(1)))
            if topic is not None:
                return topic
        found = self._subject_words.search(subject) if self._subject_words else None
        return self._topic_by_word.get(_key(found.group(1))) if found else None

    # -- fields ----------------------------------------------------------------------------

    def parse_fields(self, body: str, names: Iterable[str]) -> dict[str, str]:
        return parse_fields(body, names, self.fields.values())


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
            wanted.setdefault(_key(label), name)
    found: dict[str, str] = {}
    for line in body.splitlines():
        parsed = _FIELD_LINE.match(line)
        if parsed is None or not parsed.group(2):
            continue
        name = wanted.get(_key(parsed.group(1)))
        if name is not None and name not in found:
            found[name] = parsed.group(2)
    return found


def missing_fields(topic: Topic | None, fields: Mapping[str, str]) -> list[str]:
    """The topic's required fields that are absent or blank in `fields`."""
    if topic is None:
        return []
    return [name for name in topic.required_fields if not fields.get(name, "").strip()]


# -- loading config/directory.yaml ---------------------------------------------------------


class DirectoryError(Exception):
    """The directory file has problems; all of them are listed, each with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")
_DOMAIN = re.compile(r"^[\w-]+(\.[\w-]+)+$")


def _address(value: str) -> str:
    value = value.strip().lower()
    if not _ADDRESS.match(value):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


def _domain(value: str) -> str:
    value = value.strip().lower()
    if not _DOMAIN.match(value):
        raise ValueError(f"not a domain like telenta.example (subdomains are included): {value!r}")
    return value


def _none_is_empty(value: Any) -> Any:
    # `fire-national:` with nothing under it is a department with defaults, not an error.
    return {} if value is None else value


Address = Annotated[str, AfterValidator(_address)]
Domain = Annotated[str, AfterValidator(_domain)]
Zone = Annotated[str, AfterValidator(check_zone)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _DepartmentModel(_Strict):
    title: str = ""
    parent: str | None = None
    manager: Address | None = None
    members: list[Address] = []
    language: Literal["en", "sv", "ro"] | None = None
    timezone: Zone | None = None


class _OrganisationModel(_Strict):
    domains: list[Domain] = []
    department: str | None = None
    managers: list[Address] = []
    members: list[Address] = []
    language: Literal["en", "sv", "ro"] | None = None
    timezone: Zone | None = None


class _TopicModel(_Strict):
    department: str | None = None
    required_fields: list[str] = []
    aliases: list[Annotated[str, Field(min_length=1)]] = []


class _FieldModel(_Strict):
    label: str = Field(min_length=1)
    aliases: list[str] = []


_Entry = BeforeValidator(_none_is_empty)


class _DirectoryModel(_Strict):
    support_manager: Address | None = None
    default_department: str | None = None
    departments: dict[str, Annotated[_DepartmentModel, _Entry]] = {}
    organisations: dict[str, Annotated[_OrganisationModel, _Entry]] = {}
    topics: dict[str, Annotated[_TopicModel, _Entry]] = {}
    # Absent: Telenta's three fields (DEFAULT_FIELDS); present: exactly the fields listed.
    fields: dict[str, Annotated[_FieldModel, _Entry]] | None = None


def _vocabulary() -> set[str]:
    models = (_DepartmentModel, _OrganisationModel, _TopicModel, _FieldModel, _DirectoryModel)
    return {name for model in models for name in model.model_fields}


def load_directory(path: Path = DEFAULT_DIRECTORY) -> Directory:
    """Read and check the directory file; raise `DirectoryError` listing every problem."""
    doc, problems = read_yaml(path)
    if doc is None:
        raise DirectoryError(problems)
    try:
        model = _DirectoryModel.model_validate({} if doc.data is None else doc.data)
    except ValidationError as exc:
        raise DirectoryError(problems + validation_problems(doc, exc, (), _vocabulary())) from None
    directory = _build(model)
    problems += [doc.problem(loc, reason) for loc, reason in _dangling(directory, model)]
    problems += [doc.problem(loc, reason) for loc, reason in _claimed_twice(model, directory)]
    if problems:
        raise DirectoryError(sorted(problems, key=lambda p: p.line))
    return directory


def _build(model: _DirectoryModel) -> Directory:
    fields = None
    if model.fields is not None:
        fields = [FieldSpec(n, f.label, list(f.aliases)) for n, f in model.fields.items()]
    return Directory(
        departments=[
            Department(n, d.parent, d.manager, list(d.members), d.title, d.language, d.timezone)
            for n, d in model.departments.items()
        ],
        organisations=[
            Organisation(n, list(o.domains), o.department, list(o.managers), list(o.members), o.language,
                         o.timezone)
            for n, o in model.organisations.items()
        ],
        topics=[
            Topic(n, t.department, list(t.required_fields), list(t.aliases))
            for n, t in model.topics.items()
        ],
        fields=fields,
        support_manager=model.support_manager,
        default_department=model.default_department,
    )


def _dangling(directory: Directory, model: _DirectoryModel) -> Iterable[tuple[Loc, str]]:
    """References to departments and fields that do not exist, and cycles among parents."""

    def unknown(name: str | None) -> bool:
        return name is not None and name not in directory.departments

    if unknown(model.default_department):
        yield ("default_department",), f"unknown department '{model.default_department}'"
    for name, dep in directory.departments.items():
        if unknown(dep.parent):
            yield ("departments", name, "parent"), f"unknown department '{dep.parent}'"
        elif dep.parent is not None and _in_cycle(directory, name):
            yield ("departments", name, "parent"), f"'{name}' is its own ancestor"
    for name, org in directory.organisations.items():
        if unknown(org.department):
            yield ("organisations", name, "department"), f"unknown department '{org.department}'"
    for name, topic in directory.topics.items():
        if unknown(topic.department):
            yield ("topics", name, "department"), f"unknown department '{topic.department}'"
        for i, wanted in enumerate(topic.required_fields):
            if wanted not in directory.fields:
                known = ", ".join(directory.fields)
                yield ("topics", name, "required_fields", i), (
                    f"unknown field '{wanted}' (fields: {known})"
                )


def _in_cycle(directory: Directory, name: str) -> bool:
    seen = {name}
    current = directory.departments[name].parent
    while current is not None and current in directory.departments:
        if current in seen:
            return current == name
        seen.add(current)
        current = directory.departments[current].parent
    return False


def _claimed_twice(model: _DirectoryModel, directory: Directory) -> Iterable[tuple[Loc, str]]:
    """A domain, address or topic word that two entries claim: lookups would be ambiguous."""
    owners: dict[tuple[str, str], str] = {}

    def claim(kind: str, value: str, owner: str, loc: Loc) -> Iterable[tuple[Loc, str]]:
        first = owners.setdefault((kind, value), owner)
        if first != owner:
            yield loc, f"{kind} '{value}' already belongs to '{first}'"

    for name, org in model.organisations.items():
        for i, domain in enumerate(org.domains):
            yield from claim("domain", domain, name, ("organisations", name, "domains", i))
        for key in ("managers", "members"):
            for i, address in enumerate(getattr(org, key)):
                yield from claim("address", address, name, ("organisations", name, key, i))
    for name, topic in model.topics.items():
        yield from claim("topic word", _key(name), name, ("topics", name))
        for i, alias in enumerate(topic.aliases):
            yield from claim("topic word", _key(alias), name, ("topics", name, "aliases", i))
    for spec in directory.fields.values():
        for i, label in enumerate(spec.labels):
            loc: Loc = ("fields", spec.name, "aliases", i - 2) if i >= 2 else ("fields", spec.name)
            yield from claim("field label", _key(label), spec.name, loc)
