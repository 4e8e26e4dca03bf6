"""Running Postdesk: `serve` (the daemon), `migrate` (the schema) and `inject` (the MTA pipe)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.cli.common import (
    EX_CONFIG,
    EX_DATAERR,
    EX_NOUSER,
    EX_TEMPFAIL,
    config_option,
    engine,
    fail,
    settings,
    setup_logging,
)

if TYPE_CHECKING:
    from gateway.intake.mailboxes import Mailboxes


@click.command()
@config_option
def serve(config_path: Path | None) -> None:
    """Run the daemon: SMTP intake, processor and sender on one event loop."""
    config = settings(config_path)
    setup_logging(config)
    from gateway.daemon import serve as run
    from gateway.heap import return_large_buffers
    from gateway.routing.router import DirectoryError, RulesError

    return_large_buffers()
    try:
        run(config)
    except (RulesError, DirectoryError) as exc:
        for problem in getattr(exc, "problems", []):
            click.echo(f"postdesk: {problem}", err=True)
        fail("not started: fix the rules above (`postdesk rules check`)", EX_CONFIG)
    except OSError as exc:
        fail(f"cannot start: {exc}", EX_TEMPFAIL)


@click.command()
@config_option
def migrate(config_path: Path | None) -> None:
    """Bring the database schema up to date (`serve` does this by itself)."""
    from gateway.db.engine import head_revision, revision_of, upgrade

    store = engine(settings(config_path))
    with store.connect() as conn:
        at_head = revision_of(conn) == head_revision()
    # At head there is nothing to run, and Alembic need not be loaded to find that out.
    if not at_head:
        upgrade(store)
    with store.connect() as conn:
        click.echo(f"schema at revision {revision_of(conn)}" + (" (already current)" if at_head else ""))


@click.command()
@config_option
@click.option("--mailbox", "mailboxes", multiple=True,
              help="Envelope recipient: which of our mailboxes the MTA delivers it to (repeatable). "
                   "Default: our mailboxes named in Delivered-To, X-Original-To, To and Cc.")
@click.option("--sender", default=None, help="Envelope sender as the MTA saw it (empty: the null sender of a bounce).")
def inject(config_path: Path | None, mailboxes: tuple[str, ...], sender: str | None) -> None:
    """Queue one message read from standard input, as from an MTA pipe.

    Exits 0 once the message is committed, 75 when the store is unavailable (the MTA retries),
    67 when no mailbox of ours is given or named in the message.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.intake.mailboxes import Mailboxes
    from gateway.intake.writer import InboundItem, enqueue_inbound

    config = settings(config_path)
    ours = Mailboxes(config.mailboxes)
    for box in mailboxes:
        if not ours.accepts(box):
            fail(f"{box} is not one of our mailboxes ({', '.join(config.mailboxes)})", EX_NOUSER)
    raw = sys.stdin.buffer.read()
    targets = _recipients(ours, mailboxes, raw, config.smtp.max_message_size)
    item = InboundItem(source="pipe", mail_from=envelope_sender(sender), rcpt_to=",".join(targets), raw=raw)
    try:
        (inbound_id,) = enqueue_inbound(engine(config), [item])
    except SQLAlchemyError as exc:
        fail(f"store unavailable, try again later: {exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}",
             EX_TEMPFAIL)
    click.echo(f"queued as {inbound_id} for {', '.join(targets)}")


def _recipients(ours: Mailboxes, given: tuple[str, ...], raw: bytes, max_size: int) -> list[str]:
    """Which of our mailboxes get `raw`, or exit with the sysexits code an MTA understands."""
    from gateway.intake.pipe import recipients_in

    if not raw.strip():
        fail("no message on standard input", EX_DATAERR)
    if len(raw) > max_size:
        fail(f"message of {len(raw)} bytes exceeds smtp.max_message_size", EX_DATAERR)
    targets = [box.lower() for box in given] or recipients_in(raw, ours.accepts)
    if not targets:
        fail("none of our mailboxes in Delivered-To, X-Original-To, To or Cc; give --mailbox ADDR", EX_NOUSER)
    return targets


def envelope_sender(sender: str | None) -> str:
    """Stored form: "" when the MTA did not say, "<>" for the null sender of a bounce."""
    if sender is None:
        return ""
    return sender.strip() if sender.strip() not in ("", "<>") else "<>"
