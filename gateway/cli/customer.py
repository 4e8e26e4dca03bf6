"""`postdesk customer set EMAIL`: a customer's name, language, time zone, organisation, status mail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from gateway.cli.common import config_option, engine, settings

if TYPE_CHECKING:
    from gateway.config import Config


@click.group()
def customer() -> None:
    """Customers: their language, organisation and whether they get status mail."""


@customer.command("set")
@config_option
@click.argument("email")
@click.option("--name", help="Their name, as mail to them greets them.")
@click.option("--language", type=click.Choice(["en", "sv", "ro"]), help="Language of their mail.")
@click.option("--timezone", "zone", metavar="ZONE",
              help="Their time zone (IANA name such as Europe/Bucharest) for times in their mail and pages.")
@click.option("--organisation", help="Add them to an organisation by hand.")
@click.option("--status-mail", type=click.Choice(["on", "off"]),
              help="off: no status-change mail (questions and the resolution still go out).")
def customer_set(config_path: Path | None, email: str, name: str | None, language: str | None,
                 zone: str | None, organisation: str | None, status_mail: str | None) -> None:
    """Change a customer's settings; a customer who has not written yet is created.

    A new customer's organisation is the directory's for their address unless --organisation says.
    """
    from sqlalchemy import update

    from gateway.db.tables import CUSTOMER
    from gateway.tickets.store import customer as register

    email = email.strip().lower()
    if email.count("@") != 1 or email.startswith("@") or email.endswith("@"):
        raise click.UsageError(f"{email!r} is not an e-mail address")
    values = _values(name, language, zone, organisation, status_mail)
    config = settings(config_path)
    with engine(config).begin() as conn:
        known = conn.execute(CUSTOMER.select().where(CUSTOMER.c.email == email)).first() is not None
        if not known:
            register(conn, email, name.strip() if name is not None else "", organisation or _organisation_of(config, email))
        if values:
            conn.execute(update(CUSTOMER).where(CUSTOMER.c.email == email).values(**values))
        row = conn.execute(CUSTOMER.select().where(CUSTOMER.c.email == email)).one()
    shown = (f"name {row.name or '-'}, language {row.language or '-'}, time zone {row.timezone or '-'}, "
             f"organisation {row.organisation or '-'}, status mail {'off' if row.notifications_off else 'on'}")
    click.echo(f"{email}: {'updated' if known else 'created'}; {shown}")


def _values(name: str | None, language: str | None, zone: str | None, organisation: str | None,
            status_mail: str | None) -> dict[str, str | bool]:
    """The columns the options change, checked (an unknown time zone is a usage error)."""
    values: dict[str, str | bool] = {}
    if name is not None:
        values["name"] = name.strip()
    if language:
        values["language"] = language
    if zone:
        from gateway.i18n.formats import check_zone

        try:
            values["timezone"] = check_zone(zone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--timezone") from None
    if organisation:
        values["organisation"] = organisation
    if status_mail:
        values["notifications_off"] = status_mail == "off"
    return values


def _organisation_of(config: Config, email: str) -> str | None:
    from gateway.routing.runtime import load_routing

    org = load_routing(config).directory.organisation_for(email)
    return org.name if org else None
