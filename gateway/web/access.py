"""Who may see which ticket, and who may see a ticket's internal side.

This module owns the web history's authorisation rules (DESIGN.md §5):

- a *customer* sees the tickets they opened (`ticket.customer_id`);
- an *organisation manager* (listed under `managers` of an organisation in the directory) sees
  every ticket of that organisation (`ticket.organisation`);
- an *agent* sees the tickets of their departments and the tickets assigned to them, including
  internal notes and how each message was handled. Departments come from `agents` in the config
  and from `members`/`manager` in the directory; a department's manager (and an agent whose role
  is `manager`) also sees the departments below it, and a support lead (role `lead`, or the
  directory's `support_manager`) sees every ticket;
- a browser that came in through a ticket link sees that one ticket only, whatever the rules
  above would allow its address.

One person may hold several of these at once; what they see is the union. The rules are given
twice, on purpose: as a SQL condition for lists (`ticket_clause`) and as a check on one loaded
ticket (`may_see`); the access tests hold the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, Table, false, or_, true

from gateway.config import Agent, Config
from gateway.db.rows import CustomerRow
from gateway.routing import people
from gateway.routing.directory import Directory


class TicketFacts(Protocol):
    """The columns of a ticket that decide who sees it."""

    number: int
    customer_id: int
    organisation: str | None
    department: str | None
    assignee: str | None


@dataclass(frozen=True)
class Viewer:
    email: str
    name: str = ""
    customer_id: int | None = None
    language: str | None = None
    # IANA zone of the times on their pages.
    timezone: str = "UTC"
    organisations: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()
    everything: bool = False
    scope: int | None = None

    @property
    def is_agent(self) -> bool:
        return self.everything or bool(self.departments)

    @property
    def sees_others(self) -> bool:
        """Whether lists show tickets of more than one customer (and so need a customer column)."""
        return self.scope is None and (self.is_agent or bool(self.organisations))


def _below(directory: Directory, name: str) -> set[str]:
    found: set[str] = set()
    todo = [name]
    while todo:
        for child in directory.children(todo.pop()):
            if child.name not in found:
                found.add(child.name)
                todo.append(child.name)
    return found


def agent_departments(email: str, config: Config, directory: Directory) -> tuple[frozenset[str], bool]:
    """The departments whose tickets `email` works, and whether they see every ticket."""
    email = email.lower()
    departments: set[str] = set()
    everything = directory.support_manager is not None and directory.support_manager.lower() == email
    agent = config.agent(email)
    if agent is not None:
        everything = everything or agent.role == "lead"
        departments.update(agent.departments)
        if agent.role == "manager":
            for name in agent.departments:
                departments |= _below(directory, name)
    for department in directory.departments.values():
        if email in (m.lower() for m in department.members):
            departments.add(department.name)
        if department.manager is not None and department.manager.lower() == email:
            departments |= {department.name} | _below(directory, department.name)
    return frozenset(departments), everything


def managed_organisations(email: str, directory: Directory) -> frozenset[str]:
    email = email.lower()
    return frozenset(
        org.name for org in directory.organisations.values() if email in (m.lower() for m in org.managers)
    )


def _agent_side(viewer: Viewer, ticket: TicketFacts) -> bool:
    if viewer.everything or (ticket.department is not None and ticket.department in viewer.departments):
        return True
    return viewer.is_agent and ticket.assignee is not None and ticket.assignee == viewer.email


def may_see(viewer: Viewer, ticket: TicketFacts) -> bool:
    if viewer.scope is not None and ticket.number != viewer.scope:
        return False
    if viewer.customer_id is not None and ticket.customer_id == viewer.customer_id:
        return True
    if ticket.organisation is not None and ticket.organisation in viewer.organisations:
        return True
    return _agent_side(viewer, ticket)


def sees_internal(viewer: Viewer, ticket: TicketFacts) -> bool:
    """Internal notes and message traces: for the agents of the ticket, never for customers."""
    return may_see(viewer, ticket) and _agent_side(viewer, ticket)


def ticket_clause(viewer: Viewer, table: Table) -> ColumnElement[bool]:
    """The SQL condition on `table` (the ticket table) matching exactly what `may_see` allows."""
    if viewer.scope is not None:
        return _and_scope(viewer, table)
    return _union(viewer, table)


def ticket_parts(viewer: Viewer, table: Table) -> list[ColumnElement[bool]]:
    """What `viewer` may see as separate equalities, each one index's worth (empty: nothing).

    Their OR is the list condition. They are kept apart because a database sorts an OR of
    several indexed columns as a whole before it can take the newest page, while each equality
    alone comes out of its (column, updated_at) index already in order: `gateway.web.store`
    takes the newest page of each and merges them.
    """
    parts: list[ColumnElement[bool]] = []
    if viewer.customer_id is not None:
        parts.append(table.c.customer_id == viewer.customer_id)
    parts.extend(table.c.organisation == name for name in sorted(viewer.organisations))
    parts.extend(table.c.department == name for name in sorted(viewer.departments))
    if viewer.is_agent:
        parts.append(table.c.assignee == viewer.email)
    return parts


def _union(viewer: Viewer, table: Table) -> ColumnElement[bool]:
    if viewer.everything:
        return true()
    parts = ticket_parts(viewer, table)
    return or_(*parts) if parts else false()


def _and_scope(viewer: Viewer, table: Table) -> ColumnElement[bool]:
    return (table.c.number == viewer.scope) & _union(viewer, table)


def build_viewer(
    email: str, customer: CustomerRow | None, config: Config, directory: Directory, scope: int | None = None
) -> Viewer:
    """Everything `email` may see, from its customer row (or None), the config and the directory."""
    departments, everything = agent_departments(email, config, directory)
    agent = config.agent(email)
    return Viewer(
        email=email,
        name=(customer.name if customer is not None else "") or (agent.name if agent is not None else ""),
        customer_id=customer.id if customer is not None else None,
        language=_language(customer, agent, config, directory),
        timezone=_zone(customer, agent, config, directory),
        organisations=managed_organisations(email, directory),
        departments=departments,
        everything=everything,
        scope=scope,
    )


def _language(customer: CustomerRow | None, agent: Agent | None, config: Config, directory: Directory) -> str | None:
    """The viewer's own setting, else what their organisation or departments speak (None: the page's)."""
    if customer is not None and (customer.language or customer.organisation):
        return people.customer_language(config, directory, customer.language, customer.organisation)
    if agent is not None:
        return people.agent_language(config, directory, agent)
    return None


def _zone(customer: CustomerRow | None, agent: Agent | None, config: Config, directory: Directory) -> str:
    if agent is not None and (customer is None or not customer.timezone):
        return people.agent_zone(config, directory, agent)
    if customer is not None:
        return people.customer_zone(config, directory, customer.timezone, customer.organisation)
    return config.tickets.timezone


def is_known(email: str, has_customer: bool, config: Config, directory: Directory) -> bool:
    """Whether a sign-in link for `email` would show anything: a customer, manager or agent."""
    if has_customer or managed_organisations(email, directory):
        return True
    departments, everything = agent_departments(email, config, directory)
    return everything or bool(departments) or config.agent(email) is not None
