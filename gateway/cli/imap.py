"""`postdesk imap test ACCOUNT`: an IMAP account tried read-only, before the daemon imports from it."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import EX_CONFIG, config_option, fail, settings


@click.group()
def imap() -> None:
    """IMAP mailboxes Postdesk imports from (the imap: section of the settings)."""


@imap.command("test")
@config_option
@click.argument("account")
def imap_test(config_path: Path | None, account: str) -> None:
    """Connect to ACCOUNT, examine its folder read-only and say what an import would do.

    Exits 0 when the account works, 1 when it cannot connect or log in, 78 for an unknown name.
    """
    import asyncio

    from gateway.intake.imap.probe import find_account, test_account

    config = settings(config_path)
    if find_account(config, account) is None:
        names = ", ".join(a.name for a in config.imap.accounts) or "none configured"
        fail(f"no IMAP account {account!r} (accounts: {names})", EX_CONFIG)
    if not asyncio.run(test_account(config, account, click.echo)):
        raise SystemExit(1)
