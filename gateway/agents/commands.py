"""Commands by mail: `#verb argument` lines at the top of an agent's mail, then the text.

Reading and checking need no database: `build` turns the lines into steps, or into errors
that name the line. `run_steps` runs them in order through `gateway.tickets.actions`, so each
writes its event and adds the mail the notification matrix says, as the CLI does; the caller
runs them in one savepoint, so a step that fails undoes the ones before it (and its events).

The text below the commands is a public reply, unless one command takes it: `#note` (an
internal note), `#waiting customer` (the question to the customer) or `#cc` (the question to
the third party). The reply goes first, then the commands in the order written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parseaddr

from sqlalchemy import Connection

from gateway.config import Agent, Config
from gateway.db.rows import TicketRow
from gateway.mail.parse import Attachment
from gateway.routing.directory import Directory
from gateway.tickets import actions
from gateway.tickets.actions import PRIORITIES, ActionError
from gateway.tickets.events import Events
from gateway.tickets.lifecycle import Status

_COMMAND = re.compile(r"#([A-Za-z][\w-]*)(?:[ \t]+(.*))?")
VERBS = ("note", "status", "waiting", "assign", "take", "priority", "department", "resolve", "close", "cc")
# What a step does to the ticket: returns the ticket as it is now, and a line for the agent.
Action = Callable[[Connection, Events, TicketRow], tuple[TicketRow, str]]


@dataclass(frozen=True)
class Command:
    line: int  # 1-based line of the agent's text, for error messages
    text: str
    verb: str
    arg: str


@dataclass(frozen=True)
class Step:
    command: Command | None  # None: the reply to the customer
    run: Action


class CommandFailed(Exception):
    """A command that cannot be done; the message names its line."""

    def __init__(self, command: Command | None, reason: str) -> None:
        self.command = command
        where = f"line {command.line} ({command.text}): " if command is not None else ""
        super().__init__(where + reason)


def split(text: str) -> tuple[list[Command], str]:
    """The command lines at the top (blank lines between them allowed), and the rest."""
    lines = text.split("\n")
    commands: list[Command] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        match = _COMMAND.fullmatch(line)
        if line and match is None:
            break
        if match is not None:
            commands.append(Command(index + 1, line, match.group(1).lower(), (match.group(2) or "").strip()))
        index += 1
    return commands, "\n".join(lines[index:]).strip()


@dataclass(frozen=True)
class Scope:
    """What checking a command needs: who writes, the settings and the directory."""

    agent: Agent
    config: Config
    directory: Directory


def build(commands: list[Command], body: str, scope: Scope,
          files: Sequence[Attachment] = ()) -> tuple[list[Step], list[str]]:
    """The steps to apply, in order, or every error found (then nothing may be applied).

    `files` go with the reply to the customer, when there is one."""
    errors: list[str] = []
    steps: list[Step] = []
    takers = [c for c in commands if _takes_text(c, body)]
    for extra in takers[1:]:
        errors.append(str(CommandFailed(extra, f"the text below the commands can go to one place only, and "
                                               f"{takers[0].text} takes it")))
    if body and not takers:
        steps.append(_reply(body, scope.agent.address, files))
    for command in commands:
        builder = _BUILDERS.get(command.verb)
        try:
            if builder is None:
                raise CommandFailed(command, f"unknown command; commands: {', '.join('#' + v for v in VERBS)}")
            steps.append(builder(command, body, scope))
        except CommandFailed as exc:
            errors.append(str(exc))
    return steps, errors


def run_steps(conn: Connection, events: Events, ticket: TicketRow, steps: list[Step]) -> tuple[TicketRow, list[str]]:
    """Run the steps in order; the first that fails raises CommandFailed (the caller rolls back)."""
    done = []
    for step in steps:
        try:
            ticket, line = step.run(conn, events, ticket)
        except ActionError as exc:
            reason = str(exc) if step.command else f"the reply to the customer: {exc}"
            raise CommandFailed(step.command, reason) from None
        done.append(line)
    return ticket, done


def _takes_text(command: Command, body: str) -> bool:
    return command.verb in ("note", "cc") or (command.verb == "waiting" and _waiting(command) is Status.WAITING_CUSTOMER
                                              and bool(body))


def _reply(body: str, actor: str, files: Sequence[Attachment] = ()) -> Step:
    def step(conn: Connection, events: Events, ticket: TicketRow) -> tuple[TicketRow, str]:
        sent = "reply sent to the customer" + (f" with {', '.join(f.filename for f in files)}" if files else "")
        return actions.reply(conn, events, ticket, body, actor=actor, files=files), sent
    return Step(None, step)


def _move(command: Command, target: Status, actor: str, text: str = "") -> Step:
    def step(conn: Connection, events: Events, ticket: TicketRow) -> tuple[TicketRow, str]:
        if ticket.status == target.value:
            return ticket, f"{command.text}: the ticket is already {target.value}"
        ticket = actions.set_status(conn, events, ticket, target, actor=actor, text=text, why=f"by mail: {command.text}")
        return ticket, f"{command.text}: status is now {target.value}"
    return Step(command, step)


def _status(command: Command, body: str, scope: Scope) -> Step:
    wanted = command.arg.lower().replace("-", "_").replace(" ", "_")
    try:
        target = Status(wanted)
    except ValueError:
        raise CommandFailed(command, f"unknown status {command.arg!r} (statuses: {', '.join(s.value for s in Status)})") from None
    return _move(command, target, scope.agent.address)


def _waiting(command: Command) -> Status | None:
    word = command.arg.lower().replace("_", "-").replace(" ", "-")
    return {"customer": Status.WAITING_CUSTOMER, "third-party": Status.WAITING_THIRD_PARTY,
            "thirdparty": Status.WAITING_THIRD_PARTY}.get(word)


def _wait(command: Command, body: str, scope: Scope) -> Step:
    target = _waiting(command)
    if target is None:
        raise CommandFailed(command, "say #waiting customer or #waiting third-party")
    return _move(command, target, scope.agent.address, body if target is Status.WAITING_CUSTOMER else "")


def _resolve(command: Command, body: str, scope: Scope) -> Step:
    return _move(command, Status.RESOLVED, scope.agent.address)


def _close(command: Command, body: str, scope: Scope) -> Step:
    return _move(command, Status.CLOSED, scope.agent.address)


def find_agent(word: str, scope: Scope) -> Agent | None:
    """`me`, an address, a full name or the part of an address before the @."""
    word = word.strip().strip("<>").casefold()
    if word == "me":
        return scope.agent
    for agent in scope.config.staff:
        if word in (agent.address.casefold(), agent.name.casefold(), agent.address.casefold().partition("@")[0]):
            return agent
    return None


def _assign(command: Command, body: str, scope: Scope) -> Step:
    if command.verb == "take" and command.arg:
        raise CommandFailed(command, "#take takes no argument (use #assign <agent>)")
    agent = find_agent("me" if command.verb == "take" else command.arg, scope)
    if agent is None:
        names = ", ".join(a.address for a in scope.config.staff)
        raise CommandFailed(command, f"no agent {command.arg!r} (agents: {names})")

    def step(conn: Connection, events: Events, ticket: TicketRow) -> tuple[TicketRow, str]:
        ticket = actions.assign(conn, events, ticket, agent.address, actor=scope.agent.address)
        return ticket, f"{command.text}: assigned to {agent.name} ({ticket.status})"
    return Step(command, step)


def _priority(command: Command, body: str, scope: Scope) -> Step:
    priority = command.arg.lower()
    if priority not in PRIORITIES:
        raise CommandFailed(command, f"unknown priority {command.arg!r} (priorities: {', '.join(PRIORITIES)})")

    def step(conn: Connection, events: Events, ticket: TicketRow) -> tuple[TicketRow, str]:
        return actions.set_priority(conn, ticket, priority, actor=scope.agent.address), f"{command.text}: priority {priority}"
    return Step(command, step)


def _department(command: Command, body: str, scope: Scope) -> Step:
    department = scope.directory.department(command.arg) if command.arg else None
    if department is None:
        raise CommandFailed(command, f"no department {command.arg!r} (departments: "
                                     f"{', '.join(scope.directory.departments) or 'none'})")

    def step(conn: Connection, events: Events, ticket: TicketRow) -> tuple[TicketRow, str]:
        ticket = actions.set_department(conn, events, ticket, department.name, actor=scope.agent.address)
        return ticket, f"{command.text}: department {department.name}"
    return Step(command, step)


def _note(command: Command, body: str, scope: Scope) -> Step:
    text = "\n\n".join(part for part in (command.arg, body) if part)
    if not text:
        raise CommandFailed(command, "an empty note: write it after #note or below the commands")

    def step(conn: Connection, events: Events, ticket: TicketRow) -> tuple[TicketRow, str]:
        actions.note(conn, ticket, text, actor=scope.agent.address)
        return ticket, "internal note added (not sent to the customer)"
    return Step(command, step)


def _cc(command: Command, body: str, scope: Scope) -> Step:
    _, address = parseaddr(command.arg)
    address = address.lower()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise CommandFailed(command, "#cc needs an address: #cc Name <name@example.org>")
    local, _, domain = address.rpartition("@")
    if f"{local.split('+', 1)[0]}@{domain}" in scope.config.mailboxes:
        raise CommandFailed(command, f"{address} is one of our own mailboxes")
    if not body:
        raise CommandFailed(command, "no question: write it below the commands")

    def step(conn: Connection, events: Events, ticket: TicketRow) -> tuple[TicketRow, str]:
        ticket = actions.ask_third_party(conn, events, ticket, address, body, actor=scope.agent.address)
        return ticket, f"{command.text}: question sent to {address}; the ticket waits on them"
    return Step(command, step)


def _customer(command: Command, body: str, scope: Scope) -> Step:
    raise CommandFailed(command, "#customer opens a ticket: use it in a new mail to support, not in a reply")


_BUILDERS: dict[str, Callable[[Command, str, Scope], Step]] = {
    "note": _note, "status": _status, "waiting": _wait, "assign": _assign, "take": _assign,
    "priority": _priority, "department": _department, "resolve": _resolve, "close": _close, "cc": _cc,
    "customer": _customer,
}
