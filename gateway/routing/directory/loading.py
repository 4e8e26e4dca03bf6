"""Loading `config/directory.yaml`: its schema, and every problem in it with file and line.

The file is checked as a whole before anything is built from it: the schema (unknown keys,
addresses, domains, languages, time zones), then references between entries (departments,
fields, parents without cycles), then values two entries claim (a domain, an address, a topic
word, a field label), since lookups would be ambiguous. `load_directory` raises
`DirectoryError` listing all of them, sorted by line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gateway.i18n.zones import check_zone
from gateway.routing.directory.entries import Department, Directory, Organisation, Topic
from gateway.routing.directory.forms import FieldSpec, label_key
from gateway.routing.yamlsource import Loc, Problem, read_yaml, validation_problems
from gateway.values import Language

DEFAULT_DIRECTORY = Path("config/directory.yaml")


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


def _none_is_empty(value: object) -> object:
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
    language: Language | None = None
    timezone: Zone | None = None


class _OrganisationModel(_Strict):
    domains: list[Domain] = []
    department: str | None = None
    managers: list[Address] = []
    members: list[Address] = []
    language: Language | None = None
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
        yield from claim("topic word", label_key(name), name, ("topics", name))
        for i, alias in enumerate(topic.aliases):
            yield from claim("topic word", label_key(alias), name, ("topics", name, "aliases", i))
    for spec in directory.fields.values():
        for i, label in enumerate(spec.labels):
            loc: Loc = ("fields", spec.name, "aliases", i - 2) if i >= 2 else ("fields", spec.name)
            yield from claim("field label", label_key(label), spec.name, loc)
