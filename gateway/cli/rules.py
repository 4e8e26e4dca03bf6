"""`postdesk rules check | list` and `postdesk directory`: the routing rules and the directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.cli.agents import list_agents
from gateway.cli.common import config_option, settings

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.routing.directory import Directory
    from gateway.routing.yamlsource import Problem


@click.group()
def rules() -> None:
    """Routing rules in rules/*.yaml and the directory in config/directory.yaml."""


@rules.command("check")
@config_option
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def rules_check(config_path: Path | None, directory: Path | None) -> None:
    """Validate the rules (in DIRECTORY, default rules.dir); exit 1 with file:line: reason for each problem."""
    from gateway.routing.loader import check

    config = settings(config_path)
    folder = directory or Path(config.rules.dir)
    known, problems = _directory_of(config)
    problems.extend(check(folder, known=known))
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s); the running daemon keeps the rules in force until they load", err=True)
        raise SystemExit(1)
    click.echo(f"{folder}: rules OK")


def _directory_of(config: Config) -> tuple[Directory | None, list[Problem]]:
    """The directory the rules may name, or its problems (no directory file: none to check against)."""
    from gateway.routing.directory import DirectoryError, load_directory

    try:
        if Path(config.rules.directory).exists():
            return load_directory(Path(config.rules.directory)), []
    except DirectoryError as exc:
        return None, list(exc.problems)
    return None, []


@rules.command("list")
@config_option
def rules_list(config_path: Path | None) -> None:
    """The rules in force, in evaluation order."""
    from gateway.routing.runtime import load_routing

    routing = load_routing(settings(config_path))
    for rule in routing.rules:
        click.echo(f"{rule.file}:{rule.line}: {rule.name}")


@click.command("directory")
@config_option
@click.argument("what", type=click.Choice(["departments", "organisations", "topics", "agents"]))
def directory_command(config_path: Path | None, what: str) -> None:
    """List departments (as a tree), organisations, help topics or agents."""
    from gateway.routing.runtime import load_routing

    config = settings(config_path)
    if what == "agents":
        list_agents(config)
        return
    directory = load_routing(config).directory
    if what == "departments":
        for name, dept in directory.departments.items():
            if dept.parent is None:
                _department_tree(directory, name, 0)
    elif what == "organisations":
        for org in directory.organisations.values():
            click.echo(f"{org.name}: domains {', '.join(org.domains) or '-'} -> {org.department or '-'}; "
                       f"managers {', '.join(org.managers) or '-'}")
    else:
        for topic in directory.topics.values():
            click.echo(f"{topic.name}: -> {topic.department or '-'}; required {', '.join(topic.required_fields) or '-'}")


def _department_tree(directory: Directory, name: str, depth: int) -> None:
    dept = directory.departments[name]
    click.echo(f"{'  ' * depth}{name}: {dept.title or name} (manager {dept.manager or '-'}; "
               f"{len(dept.members)} member(s))")
    for child in directory.children(name):
        _department_tree(directory, child.name, depth + 1)
