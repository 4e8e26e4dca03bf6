"""`postdesk backup now` and `postdesk restore`: every row of the database and the signing secret."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import EX_TEMPFAIL, config_option, engine, fail, settings, shown_url


@click.group()
def backup() -> None:
    """Backups that restore everything: all rows of the database and the signing secret."""


@backup.command("now")
@config_option
@click.option("--to", "target", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: store/backups/postdesk-<UTC time>.tar.gz).")
def backup_now(config_path: Path | None, target: Path | None) -> None:
    """Write a backup now: every table and the signing secret, in one file readable only by you.

    Works on SQLite and PostgreSQL alike, with the daemon running (the copy is consistent).
    Keep the file as safe as the secret: with it, anyone can sign reply addresses and links.
    Restore it with `postdesk restore FILE`.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.backup import default_path, write_backup

    config = settings(config_path)
    path = target or default_path(config)
    click.echo(f"backing up {shown_url(config)} to {path}")
    try:
        manifest = write_backup(config, engine(config), path, say=click.echo)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"backup failed: {exc}", EX_TEMPFAIL)
    rows = sum(manifest["tables"].values())
    click.echo(f"backup written: {path} ({path.stat().st_size} bytes, {rows} row(s) in {len(manifest['tables'])} "
               f"table(s), schema {manifest['revision']}, signing secret included, mode 0600)")


@click.command()
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(config_path: Path | None, file: Path) -> None:
    """Restore FILE (from `postdesk backup now` or the daily backup) into an empty database.

    Puts back every row and the signing secret (store/secret.key, or checks `secret`), so reply
    addresses, sign-in, ticket and rating links mailed before the backup keep working; then
    brings the schema up to this version. Stop the daemon first; the database named by
    database.url must be empty (a new SQLite file or a new PostgreSQL database).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.backup import RestoreError, restore_backup

    config = settings(config_path)
    click.echo(f"restoring {file} into {shown_url(config)}")
    try:
        manifest = restore_backup(config, file, say=click.echo)
    except RestoreError as exc:
        fail(f"not restored: {exc}")
    except (SQLAlchemyError, OSError) as exc:
        fail(f"restore failed: {exc}", EX_TEMPFAIL)
    click.echo(f"restored {sum(manifest['tables'].values())} row(s) of the backup made {manifest['created_at']}; "
               "start the daemon with `postdesk serve`")
