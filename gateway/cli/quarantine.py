"""`postdesk quarantine list | show | retry`: messages a stage could not handle (gateway.quarantine)."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import config_option, engine, settings, show_item


@click.group()
def quarantine() -> None:
    """Messages a stage could not handle, with the reason; the raw bytes are kept."""


@quarantine.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include entries already retried.")
def quarantine_list(config_path: Path | None, show_all: bool) -> None:
    """List quarantined messages, newest first."""
    from gateway.quarantine import list_entries

    entries = list_entries(engine(settings(config_path)), include_released=show_all)
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

    show_item(get_entry(engine(settings(config_path)), entry_id), f"quarantine entry {entry_id}", raw)


@quarantine.command("retry")
@config_option
@click.argument("entry_ids", type=int, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every entry not yet retried.")
def quarantine_retry(config_path: Path | None, entry_ids: tuple[int, ...], retry_all: bool) -> None:
    """Put entries back on the inbound queue (after fixing what stopped them)."""
    from gateway.quarantine import retry

    if not entry_ids and not retry_all:
        raise click.UsageError("name entry ids or pass --all")
    count = retry(engine(settings(config_path)), None if retry_all else list(entry_ids))
    click.echo(f"{count} message(s) queued again")
