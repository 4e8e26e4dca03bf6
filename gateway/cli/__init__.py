"""The `postdesk` command: the group and its verbs, one module per verb group.

Each module imports only click at load time and the rest of Postdesk when its verb runs, so
`postdesk --help` and every verb start without loading what they do not use.

Exit codes follow sysexits where an MTA reads them: 0 success, 65 bad message data, 67 unknown
mailbox, 75 temporary failure (the MTA retries), 78 configuration error.
"""

from __future__ import annotations

import click

from gateway.cli.agents import agents
from gateway.cli.backup import backup, restore
from gateway.cli.customer import customer
from gateway.cli.doctor import doctor
from gateway.cli.imap import imap
from gateway.cli.outbox import outbox
from gateway.cli.quarantine import quarantine
from gateway.cli.report import report
from gateway.cli.route import route_command
from gateway.cli.rules import directory_command, rules
from gateway.cli.serve import inject, migrate, serve
from gateway.cli.ticket import ticket

__all__ = ["main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="postdesk")
def main() -> None:
    """Postdesk: an email-first helpdesk gateway.

    Mail to the configured mailboxes becomes tickets; customers get a confirmation with the
    ticket number; replies thread onto their ticket. Start with `postdesk serve`.
    """


# Each verb is defined in its own module; `postdesk --help` lists them alphabetically.
for verb in (serve, doctor, migrate, inject, backup, restore, quarantine, outbox, route_command, rules,
             directory_command, agents, imap, ticket, report, customer):
    main.add_command(verb)


def run() -> None:
    """The `postdesk` command as installed: the collector spared while the verb starts (gateway.collector)."""
    from gateway import collector

    collector.starting()
    main()
