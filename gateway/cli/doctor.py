"""`postdesk doctor`: the installation checked the way the daemon will use it (gateway.doctor)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from gateway.cli.common import config_option


@click.command()
@config_option
@click.option("--relay-timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for the relay.")
def doctor(config_path: Path | None, relay_timeout: float) -> None:
    """Check settings, database and schema, relay (EHLO), TLS files, rules and templates.

    Prints one line per check, OK or FAIL with a fix; changes nothing. Exits 1 when a check failed.
    """
    from gateway.doctor import run

    logging.basicConfig(level=logging.ERROR)
    sys.exit(run(config_path, click.echo, relay_timeout))
