"""The rules and directory load, every department reaches someone, and how agents' mail is proved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from gateway.config import Config
from gateway.doctor.finding import Finding

if TYPE_CHECKING:
    from gateway.routing.directory import Directory


def check_rules(config: Config) -> list[Finding]:
    from gateway.routing.directory import DirectoryError
    from gateway.routing.loader import RulesError
    from gateway.routing.runtime import load_routing, problems_of

    try:
        routing = load_routing(config)
    except (RulesError, DirectoryError) as exc:
        fix = "edit that file and line; `postdesk rules check` validates without starting anything"
        return [Finding("rules", False, str(problem), fix) for problem in problems_of(exc)] or [
            Finding("rules", False, str(exc), fix)]
    directory = routing.directory
    return [Finding("rules", True, f"{len(routing.rules.rules)} rule(s) in {config.rules.dir}; directory "
                    f"{config.rules.directory}: {len(directory.departments)} department(s), "
                    f"{len(directory.organisations)} organisation(s)"), *check_staff(config, directory)]


def check_staff(config: Config, directory: Directory) -> Iterator[Finding]:
    """Every ticket reaches someone: each department has people, unrouted mail a triage team."""
    from gateway.routing.staff import triage_department, unheard

    where = config.rules.directory
    for name in unheard(config, directory):
        yield Finding("staff", False, f"department {name}: nobody would hear of its tickets (no manager, no members)",
                      f"give it a manager or members in {where}, or remove it")
    triage = triage_department(config, directory)
    if directory.default_department is None and triage is None:
        yield Finding("staff", False, "mail that no rule, organisation or topic routes goes to no department",
                      f"set rules.triage_department, or make support_manager in {where} a department's manager")
    elif triage is not None and triage not in directory.departments:
        yield Finding("staff", False, f"rules.triage_department: no department {triage!r} in {where}",
                      f"name one of: {', '.join(directory.departments)}")
    if config.agents:
        yield Finding("staff", True, f"{len(config.agents)} person(s) under agents: in the settings, merged with the "
                      "directory", f"list them as members or managers of departments in {where} and empty agents:",
                      warn=True)
    if config.agent_mail.trusted_authserv_id and not config.agent_mail.mta_hosts:
        yield Finding("staff", True, "agent_mail.trusted_authserv_id is set without agent_mail.mta_hosts: no "
                      "Authentication-Results header is believed", "set agent_mail.mta_hosts to the IP addresses of "
                      "your MTAs (e.g. [127.0.0.1]), or empty trusted_authserv_id", warn=True)
    staff = config.staff
    detail = (f"{len(staff)} person(s) ({sum(a.role == 'manager' for a in staff)} manager(s), "
              f"{sum(a.role == 'lead' for a in staff)} lead(s)); unrouted mail to {triage or directory.default_department}")
    yield Finding("staff", True, detail)


def check_agent_tokens(config: Config) -> Finding:
    """Name the agents' domains where a leaked reply token alone acts for an agent."""
    from gateway.agents.binding import Binding
    from gateway.agents.proof import dns_lookup

    domains = sorted({agent.address.rpartition("@")[2].lower() for agent in config.agents})
    if not domains:
        return Finding("agents", True, "no agents configured")
    weak = Binding(dns_lookup(config), config.agent_mail.signed_domains).token_only(domains)
    if not weak:
        return Finding("agents", True, f"reply tokens need the domain's DKIM as well for {', '.join(domains)}")
    return Finding("agents", True, f"token-only proof for {', '.join(weak)} (no DMARC record, not in "
                   "agent_mail.signed_domains): a leaked agent notice acts for its agent until it expires; "
                   "publish DMARC or list the domain in agent_mail.signed_domains if it signs its mail")
