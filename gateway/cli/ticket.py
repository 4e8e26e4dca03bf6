"""`postdesk ticket show | assign | status | reply | note`: one ticket, from the command line.

`show` only reads; the other verbs are the shared actions of gateway.tickets.actions, which the
web page and agents' mail call too, and send what the notification matrix says.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from gateway.cli.common import config_option, engine, fail, settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.db.rows import TicketRow
    from gateway.tickets.events import Events

T = TypeVar("T")
STATUSES = ["new", "in_progress", "waiting_customer", "waiting_third_party", "resolved", "closed"]


@click.group()
def ticket() -> None:
    """Look at and work tickets from the command line (agents can also work them by mail)."""


def _act(config_path: Path | None, number: int, work: Callable[[Connection, Events, TicketRow], T]) -> T:
    """Run `work` on ticket NUMBER in one transaction, with the staff and mail the daemon has."""
    from gateway.notify import Notifier
    from gateway.routing.runtime import load_routing
    from gateway.tickets.actions import ActionError, by_number
    from gateway.tickets.events import Events

    config = settings(config_path)
    load_routing(config)  # the directory's departments are the staff an action may name
    notifier = Notifier.for_config(config)
    try:
        with engine(config).begin() as conn:
            # The action says what happened; the one notify step turns that into mail.
            events = Events(config)
            done = work(conn, events, by_number(conn, number))
            notifier.send(conn, events.items)
            return done
    except ActionError as exc:
        fail(str(exc))


@ticket.command("show")
@config_option
@click.argument("number", type=int)
def ticket_show(config_path: Path | None, number: int) -> None:
    """The ticket, its SLA clocks (elapsed, paused, due, breached) and its history."""
    from sqlalchemy import select

    from gateway.db.tables import TICKET
    from gateway.tickets.show import describe

    # Read directly, not through gateway.tickets.actions: showing sends no mail, so it loads none.
    config = settings(config_path)
    with engine(config).connect() as conn:
        row = conn.execute(select(TICKET).where(TICKET.c.number == number)).first()
        if row is None:
            fail(f"no ticket {number}")
        click.echo(describe(conn, config, row))


@ticket.command("assign")
@config_option
@click.argument("number", type=int)
@click.argument("agent")
@click.option("--by", "actor", default="cli", help="Who did it, for the history.")
def ticket_assign(config_path: Path | None, number: int, agent: str, actor: str) -> None:
    """Give ticket NUMBER to AGENT (an address from agents:); a new ticket goes in progress."""
    from gateway.tickets.actions import assign

    t = _act(config_path, number, lambda conn, events, t: assign(conn, events, t, agent, actor=actor))
    click.echo(f"ticket {number} assigned to {t.assignee} ({t.status})")


@ticket.command("status")
@config_option
@click.argument("number", type=int)
@click.argument("status", type=click.Choice(STATUSES))
@click.option("--message", "-m", default="", help="Text for the customer (the question, when waiting on them).")
@click.option("--by", "actor", default="cli", help="Who did it, for the history.")
def ticket_status(config_path: Path | None, number: int, status: str, message: str, actor: str) -> None:
    """Move ticket NUMBER to STATUS; the customer gets what the notification matrix says."""
    from gateway.tickets.actions import set_status
    from gateway.tickets.lifecycle import Status

    t = _act(config_path, number, lambda conn, events, t: set_status(
        conn, events, t, Status(status), actor=actor, text=message))
    click.echo(f"ticket {number} is now {t.status}")


@ticket.command("reply")
@config_option
@click.argument("number", type=int)
@click.option("--message", "-m", required=True, help="The reply; '-' reads it from standard input.")
@click.option("--by", "actor", default="cli", help="The agent replying (takes a new ticket).")
def ticket_reply(config_path: Path | None, number: int, message: str, actor: str) -> None:
    """Send a public reply to the customer of ticket NUMBER."""
    from gateway.tickets.actions import reply

    text = sys.stdin.read() if message == "-" else message
    t = _act(config_path, number, lambda conn, events, t: reply(conn, events, t, text, actor=actor))
    click.echo(f"reply queued for ticket {number} ({t.status})")


@ticket.command("note")
@config_option
@click.argument("number", type=int)
@click.argument("text")
@click.option("--by", "actor", default="cli", help="Who wrote it.")
def ticket_note(config_path: Path | None, number: int, text: str, actor: str) -> None:
    """Add an internal note (never sent to the customer)."""
    from gateway.tickets.actions import note

    _act(config_path, number, lambda conn, events, t: note(conn, t, text, actor=actor))
    click.echo(f"note added to ticket {number}")
