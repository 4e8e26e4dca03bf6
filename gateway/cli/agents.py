"""`postdesk agents list`: the people who work tickets, as the directory and settings name them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.cli.common import config_option, settings

if TYPE_CHECKING:
    from gateway.config import Config

ROLES = {"agent": "agent", "manager": "department manager", "lead": "support lead"}


@click.group()
def agents() -> None:
    """The people who work tickets, on the web and from their own mail client."""


@agents.command("list")
@config_option
def agents_list(config_path: Path | None) -> None:
    """Each person: name, address, role and departments (members and managers in the directory)."""
    list_agents(settings(config_path))


def list_agents(config: Config) -> None:
    from gateway.routing.runtime import load_routing

    load_routing(config)  # the directory's departments are the staff
    if not config.staff:
        click.echo(f"no staff: name members and managers of departments in {config.rules.directory}")
    for agent in config.staff:
        click.echo(f"{agent.name} <{agent.address}>: {ROLES[agent.role]}; departments "
                   f"{', '.join(agent.departments) or '-'}; mail in {agent.language or config.tickets.language}")
