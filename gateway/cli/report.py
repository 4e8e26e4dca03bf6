"""`postdesk report feedback`: summaries for managers."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import config_option, engine, settings


@click.group()
def report() -> None:
    """Summaries for managers."""


@report.command("feedback")
@config_option
def report_feedback(config_path: Path | None) -> None:
    """Customer ratings per agent: count, average, distribution and the latest comments."""
    from gateway.tickets.show import feedback_report

    with engine(settings(config_path)).connect() as conn:
        click.echo(feedback_report(conn))
