"""What every verb shares: the --config option, loading settings, the engine, exit codes, output.

Nothing heavy is imported here at module level: `postdesk --help` and each verb import only
what they use (settings, SQLAlchemy, the pipeline) when they run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Protocol, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.config import Config

# sysexits, where an MTA reads them: bad message data, unknown mailbox, try again, settings.
EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 65, 67, 75, 78
F = TypeVar("F", bound=Callable[..., object])


def fail(message: str, code: int = 1) -> NoReturn:
    """Say what went wrong on standard error and exit with `code`."""
    click.echo(f"postdesk: {message}", err=True)
    sys.exit(code)


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        envvar="POSTDESK_CONFIG",
        help="Settings file (default: config/postdesk.yaml). POSTDESK_* variables override it.",
    )(func)


def settings(config_path: Path | None) -> Config:
    """The settings, or exit 78 with the key that is wrong."""
    from gateway.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail(str(exc), EX_CONFIG)


def engine(config: Config) -> Engine:
    from gateway.db.engine import make_engine

    return make_engine(config.database.url, pool_size=1)


def setup_logging(config: Config) -> None:
    from gateway import logs

    # Under systemd the journal stamps each line; gateway.logs leaves the timestamp out there.
    logs.setup(config.logging.level, sys.stderr)
    # aiosmtpd logs every SMTP command and alembic every plugin at INFO: too much for an admin.
    for noisy in ("mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def shown_url(config: Config) -> str:
    """database.url with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(config.database.url).render_as_string(hide_password=True)


class Shown(Protocol):
    """A quarantine entry or an outbox mail, as `show` prints it."""

    @property
    def raw(self) -> bytes: ...

    def details(self) -> str: ...


def show_item(item: Shown | None, what: str, raw: bool) -> None:
    """One quarantine entry or outbox mail: its summary, or its bytes as stored with --raw."""
    if item is None:
        fail(f"no {what}")
    if raw:
        sys.stdout.buffer.write(item.raw)
        return
    click.echo(item.details())
