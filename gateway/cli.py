"""The `postdesk` command: serve, inject, quarantine, migrate and the admin's other verbs.

Exit codes follow sysexits where an MTA reads them: 0 success, 65 bad message data, 67 unknown
mailbox, 75 temporary failure (the MTA retries), 78 configuration error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import Config, ConfigError, load_config

EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 65, 67, 75, 78
F = TypeVar("F", bound=Callable[..., Any])


def _setup_logging(config: Config) -> None:
    logging.basicConfig(
        level=config.logging.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd logs every SMTP command and alembic every plugin at INFO: too much for an admin.
    for noisy in ("mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        envvar="POSTDESK_CONFIG",
        help="Settings file (default: config/postdesk.yaml). POSTDESK_* variables override it.",
    )(func)


def _config(config_path: Path | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(f"postdesk: {exc}", err=True)
        sys.exit(EX_CONFIG)


def _engine(config: Config) -> Engine:
    from gateway.db.engine import make_engine

    return make_engine(config.database.url, pool_size=1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="postdesk")
def main() -> None:
    """Postdesk: an email-first helpdesk gateway.

    Mail to the configured mailboxes becomes tickets; customers get a confirmation with the
    ticket number; replies thread onto their ticket. Start with `postdesk serve`.
    """


@main.command()
@config_option
def serve(config_path: Path | None) -> None:
    """Run the daemon: SMTP intake, processor and sender on one event loop."""
    config = _config(config_path)
    _setup_logging(config)
    from gateway.daemon import serve as run

    try:
        run(config)
    except OSError as exc:
        click.echo(f"postdesk: cannot start: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)


@main.command()
@config_option
def migrate(config_path: Path | None) -> None:
    """Bring the database schema up to date (`serve` does this by itself)."""
    from gateway.db.engine import current_revision, upgrade

    config = _config(config_path)
    engine = _engine(config)
    upgrade(engine)
    click.echo(f"schema at revision {current_revision(engine)}")


@main.command()
@config_option
@click.option("--mailbox", help="Which of our mailboxes the message was sent to (default: the first).")
@click.option("--sender", default=None, help="Envelope sender as the MTA saw it (empty: the null sender of a bounce).")
def inject(config_path: Path | None, mailbox: str | None, sender: str | None) -> None:
    """Queue one message read from standard input, as from an MTA pipe.

    Exits 0 once the message is committed, 75 when the store is unavailable (the MTA retries).
    """
    from gateway.db.queues import enqueue_inbound
    from gateway.intake.smtp import Mailboxes

    config = _config(config_path)
    target = (mailbox or config.mailboxes[0]).lower()
    if not Mailboxes(config.mailboxes).accepts(target):
        click.echo(f"postdesk: {target} is not one of our mailboxes ({', '.join(config.mailboxes)})", err=True)
        sys.exit(EX_NOUSER)
    raw = sys.stdin.buffer.read()
    if not raw.strip():
        click.echo("postdesk: no message on standard input", err=True)
        sys.exit(EX_DATAERR)
    if len(raw) > config.smtp.max_message_size:
        click.echo(f"postdesk: message of {len(raw)} bytes exceeds smtp.max_message_size", err=True)
        sys.exit(EX_DATAERR)
    try:
        (inbound_id,) = enqueue_inbound(
            _engine(config), [{"source": "pipe", "mail_from": _envelope_sender(sender), "rcpt_to": target, "raw": raw}]
        )
    except SQLAlchemyError as exc:
        click.echo(f"postdesk: store unavailable, try again later: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(f"queued as {inbound_id}")


def _envelope_sender(sender: str | None) -> str:
    """Stored form: "" when the MTA did not say, "<>" for the null sender of a bounce."""
    if sender is None:
        return ""
    return sender.strip() if sender.strip() not in ("", "<>") else "<>"


@main.group()
def quarantine() -> None:
    """Messages a stage could not handle, with the reason; the raw bytes are kept."""


@quarantine.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include entries already retried.")
def quarantine_list(config_path: Path | None, show_all: bool) -> None:
    """List quarantined messages, newest first."""
    from gateway.quarantine import list_entries

    entries = list_entries(_engine(_config(config_path)), include_released=show_all)
    if not entries:
        click.echo("quarantine is empty")
        return
    for entry in entries:
        click.echo(entry.line())


@quarantine.command("show")
@config_option
@click.argument("entry_id", type=int)
@click.option("--raw", is_flag=True, help="Print the raw message bytes instead of the summary.")
def quarantine_show(config_path: Path | None, entry_id: int, raw: bool) -> None:
    """Show one entry: reason, envelope and the start of the message."""
    from gateway.quarantine import get_entry

    entry = get_entry(_engine(_config(config_path)), entry_id)
    if entry is None:
        click.echo(f"postdesk: no quarantine entry {entry_id}", err=True)
        sys.exit(1)
    if raw:
        sys.stdout.buffer.write(entry.raw)
        return
    click.echo(entry.details())


@quarantine.command("retry")
@config_option
@click.argument("entry_ids", type=int, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every entry not yet retried.")
def quarantine_retry(config_path: Path | None, entry_ids: tuple[int, ...], retry_all: bool) -> None:
    """Put entries back on the inbound queue (after fixing what stopped them)."""
    from gateway.quarantine import retry

    if not entry_ids and not retry_all:
        raise click.UsageError("name entry ids or pass --all")
    count = retry(_engine(_config(config_path)), None if retry_all else list(entry_ids))
    click.echo(f"{count} message(s) queued again")
