"""`postdesk outbox list | show | retry`: mail on its way to the relay, sent or dead (gateway.outboxadmin)."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import config_option, engine, settings, show_item


@click.group()
def outbox() -> None:
    """Mail waiting for the relay, sent, or dead (given up on, with the relay's last answer).

    \b
    postdesk outbox list                  dead mail, newest first
    postdesk outbox list --state all      every state; --to ADDR and --kind KIND narrow it
    postdesk outbox show ID [--raw]       one mail: state, last error, headers and text
    postdesk outbox retry ID... | --all   put dead mail back in the queue (attempts from zero)
    """


@outbox.command("list")
@config_option
@click.option("--state", type=click.Choice(["dead", "pending", "sent", "all"]), default="dead", show_default=True,
              help="Which mail to list.")
@click.option("--to", "to", help="Only mail to this address.")
@click.option("--kind", help="Only mail of this kind (confirmation, signin, agent_notice, ...).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many, newest first.")
def outbox_list(config_path: Path | None, state: str, to: str | None, kind: str | None, limit: int) -> None:
    """List outbox mail: id, created, state, kind, recipient, subject, attempts, last error."""
    from gateway.outboxadmin import list_mail

    found = list_mail(engine(settings(config_path)), state=None if state == "all" else state, to=to, kind=kind,
                      limit=limit)
    if not found:
        click.echo(f"no {'' if state == 'all' else state + ' '}mail in the outbox")
    for mail in found:
        click.echo(mail.line())


@outbox.command("show")
@config_option
@click.argument("mail_id", type=int)
@click.option("--raw", is_flag=True, help="Print the mail's bytes as they go to the relay.")
def outbox_show(config_path: Path | None, mail_id: int, raw: bool) -> None:
    """Show one mail: its state and last error, then its headers and text."""
    from gateway.outboxadmin import get_mail

    show_item(get_mail(engine(settings(config_path)), mail_id), f"outbox mail {mail_id}", raw)


@outbox.command("retry")
@config_option
@click.argument("mail_ids", type=int, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Requeue every dead mail.")
def outbox_retry(config_path: Path | None, mail_ids: tuple[int, ...], retry_all: bool) -> None:
    """Put dead mail back in the queue once its cause is fixed; the sender delivers it next round.

    Only dead mail is requeued: pending mail is on its way and sent mail never goes out twice.
    """
    from gateway.outboxadmin import retry

    if not mail_ids and not retry_all:
        raise click.UsageError("name outbox ids or pass --all")
    requeued = retry(engine(settings(config_path)), None if retry_all else list(mail_ids))
    skipped = sorted(set(mail_ids) - set(requeued))
    click.echo(f"{len(requeued)} dead mail(s) queued again")
    if skipped:
        click.echo(f"not dead, left as they are: {', '.join(map(str, skipped))}", err=True)
