"""The staff: one list of people, read from the directory's departments.

Members of a department are its agents, its manager is a manager, the directory's
`support_manager` is the support lead. `agents:` in the settings file is the older place for the
same people: its entries are merged in (their name, language, extra departments and a higher
role win), so an installation that still has it keeps working, and `postdesk doctor` says to
move them. The merged list is handed to the `Config` whenever the directory (re)loads, so that
`config.agent()` and `config.agents_of()` answer from the directory in force.

This module also owns who hears of a ticket when its department would tell nobody: the triage
department (`rules.triage_department`, by default the support lead's own department).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.config import Agent, Config, Role
from gateway.routing.directory import Directory
from gateway.values import Language

_RANK: dict[Role, int] = {"agent": 0, "manager": 1, "lead": 2}
_SEPARATORS = re.compile(r"[._+-]+")


def name_from_address(address: str) -> str:
    """`karin.brand@…` is Karin Brand: the directory lists addresses, mail wants a name."""
    local = address.partition("@")[0]
    return " ".join(part.capitalize() for part in _SEPARATORS.split(local) if part) or address


@dataclass
class _Person:
    """One person as the directory and `agents:` describe them, merged before becoming an Agent."""

    address: str
    name: str
    role: Role = "agent"
    departments: list[str] = field(default_factory=list)
    language: Language | None = None
    timezone: str | None = None

    def join(self, role: Role, departments: Iterable[str]) -> None:
        self.departments += [d for d in departments if d not in self.departments]
        if _RANK[role] > _RANK[self.role]:
            self.role = role

    def agent(self) -> Agent:
        return Agent(name=self.name, address=self.address, departments=tuple(self.departments), role=self.role,
                     language=self.language, timezone=self.timezone)


def staff_of(directory: Directory, configured: Iterable[Agent] = ()) -> tuple[Agent, ...]:
    """Everyone who works tickets, once each, with their departments and highest role."""
    people: dict[str, _Person] = {}

    def add(address: str, role: Role, departments: Iterable[str] = ()) -> _Person:
        key = address.strip().lower()
        person = people.setdefault(key, _Person(key, name_from_address(key)))
        person.join(role, departments)
        return person

    for department in directory.departments.values():
        for member in department.members:
            add(member, "agent", [department.name])
        if department.manager:
            add(department.manager, "manager", [department.name])
    if directory.support_manager:
        add(directory.support_manager, "lead")
    for agent in configured:
        person = add(agent.address, agent.role, agent.departments)
        person.name = agent.name
        person.language = agent.language or person.language
        person.timezone = agent.timezone or person.timezone
    return tuple(person.agent() for person in people.values())


def attach(config: Config, directory: Directory) -> None:
    """Make `directory`'s people the staff `config` answers for (on load and on every reload)."""
    config.use_staff(staff_of(directory, config.agents))


def triage_department(config: Config, directory: Directory) -> str | None:
    """Where a ticket goes that nothing routes: the configured department, else the lead's own."""
    if config.rules.triage_department:
        return config.rules.triage_department
    lead = (directory.support_manager or "").lower()
    if not lead:
        return None
    for department in directory.departments.values():
        if (department.manager or "").lower() == lead or lead in (m.lower() for m in department.members):
            return department.name
    return None


def leads(config: Config) -> list[Agent]:
    return [a for a in config.staff if a.role == "lead"]


def audience(config: Config, directory: Directory, department: str | None) -> list[Agent]:
    """Who hears of a new ticket in `department`: its people, else triage's, else the lead."""
    people = config.agents_of(department)
    if people:
        return people
    for above in directory.ancestors(department) if department else []:
        people = config.agents_of(above.name)
        if people:
            return people
    return config.agents_of(triage_department(config, directory)) or leads(config)


def unheard(config: Config, directory: Directory) -> list[str]:
    """Departments whose tickets would reach nobody on their own: no manager, no members."""
    return [name for name in directory.departments if not config.agents_of(name)]
