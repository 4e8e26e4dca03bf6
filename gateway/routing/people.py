"""Whose language and time zone: a new customer's, a known customer's, an agent's.

It reads the settings and the directory, so it sits here, above both, rather than in
`gateway.i18n`, which only knows languages and formats. This module owns the order in which
settings are consulted, so that mail and pages agree:

- a new customer's language: their organisation's, then the department the ticket goes to
  (or its national team's), then the language of their own text
  (`gateway.i18n.detect`, when `tickets.detect_language`), then `tickets.language`;
- a known customer's: their own setting first, then the same chain without the detection;
- an agent's: their own, then their first department's, then `tickets.language`;
- a time zone: the person's own, their organisation's, their department's, the zone of the
  default SLA plan's business calendar, then `tickets.timezone`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gateway.config import Agent, Config
from gateway.i18n.catalogues import supported
from gateway.i18n.detect import detect
from gateway.routing.directory import Directory, Organisation


def _first(*candidates: str | None) -> str | None:
    return next((c for c in candidates if c), None)


def _department_setting(directory: Directory, names: Iterable[str | None], key: str) -> str | None:
    for name in names:
        department = directory.department(name) if name else None
        while department is not None:
            value = getattr(department, key)
            if value:
                return str(value)
            # A local team without its own setting speaks as its national team does.
            department = directory.department(department.parent) if department.parent else None
    return None


def _default_zone(config: Config) -> str:
    """The default SLA plan's calendar zone (where support works), else `tickets.timezone`."""
    plan = config.sla.plans.get(config.sla.default_plan)
    calendar = config.sla.calendars.get(plan.calendar, {}) if plan is not None else {}
    zone = calendar.get("timezone") if isinstance(calendar, dict) else None
    return str(zone) if isinstance(zone, str) and zone else config.tickets.timezone


def new_customer_language(config: Config, directory: Directory, organisation: Organisation | None,
                          department: str | None, text: str,
                          detector: Callable[[str], str | None] = detect) -> tuple[str, str]:
    """(language, why) for a customer writing for the first time; `detector` tells the language of
    `text` (a batch passes one that has them all detected already)."""
    if organisation is not None and supported(organisation.language):
        return str(supported(organisation.language)), f"organisation {organisation.name}"
    names = [department, organisation.department if organisation else None]
    found = supported(_department_setting(directory, names, "language"))
    if found:
        return found, f"department {department or (organisation.department if organisation else '')}"
    if config.tickets.detect_language:
        guessed = detector(text)
        if supported(guessed):
            return str(guessed), "detected in the customer's text"
    return config.tickets.language, "tickets.language"


def customer_language(config: Config, directory: Directory, own: str | None, organisation: str | None,
                      department: str | None = None) -> str:
    org = directory.organisations.get(organisation) if organisation else None
    names = [department, org.department if org else None]
    return str(_first(supported(own), supported(org.language if org else None),
                      supported(_department_setting(directory, names, "language"))) or config.tickets.language)


def customer_zone(config: Config, directory: Directory, own: str | None, organisation: str | None,
                  department: str | None = None) -> str:
    org = directory.organisations.get(organisation) if organisation else None
    names = [department, org.department if org else None]
    return str(_first(own, org.timezone if org else None, _department_setting(directory, names, "timezone"))
               or _default_zone(config))


def agent_language(config: Config, directory: Directory, agent: Agent | None) -> str:
    names = list(agent.departments) if agent else []
    return str(_first(supported(agent.language if agent else None),
                      supported(_department_setting(directory, names, "language"))) or config.tickets.language)


def agent_zone(config: Config, directory: Directory, agent: Agent | None) -> str:
    names = list(agent.departments) if agent else []
    return str(_first(agent.timezone if agent else None, _department_setting(directory, names, "timezone"))
               or _default_zone(config))
