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

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # imported where used: `postdesk route --mail-only` must start fast
    from sqlalchemy import Engine

    from gateway.config import Config

EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 65, 67, 75, 78
F = TypeVar("F", bound=Callable[..., Any])


def _setup_logging(config: Config) -> None:
    from gateway import logs

    # Under systemd the journal stamps each line; gateway.logs leaves the timestamp out there.
    logs.setup(config.logging.level, sys.stderr)
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
    from gateway.config import ConfigError, load_config

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
    from gateway.heap import return_large_buffers

    return_large_buffers()
    from gateway.routing.rules import DirectoryError, RulesError

    try:
        run(config)
    except (RulesError, DirectoryError) as exc:
        for problem in getattr(exc, "problems", []):
            click.echo(f"postdesk: {problem}", err=True)
        click.echo("postdesk: not started: fix the rules above (`postdesk rules check`)", err=True)
        sys.exit(EX_CONFIG)
    except OSError as exc:
        click.echo(f"postdesk: cannot start: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)


@main.command()
@config_option
@click.option("--relay-timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for the relay.")
def doctor(config_path: Path | None, relay_timeout: float) -> None:
    """Check settings, database and schema, relay (EHLO), TLS files, rules and templates.

    Prints one line per check, OK or FAIL with a fix; changes nothing. Exits 1 when a check failed.
    """
    from gateway.doctor import run

    logging.basicConfig(level=logging.ERROR)
    sys.exit(run(config_path, click.echo, relay_timeout))


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
@click.option("--mailbox", "mailboxes", multiple=True,
              help="Envelope recipient: which of our mailboxes the MTA delivers it to (repeatable). "
                   "Default: our mailboxes named in Delivered-To, X-Original-To, To and Cc.")
@click.option("--sender", default=None, help="Envelope sender as the MTA saw it (empty: the null sender of a bounce).")
def inject(config_path: Path | None, mailboxes: tuple[str, ...], sender: str | None) -> None:
    """Queue one message read from standard input, as from an MTA pipe.

    Exits 0 once the message is committed, 75 when the store is unavailable (the MTA retries),
    67 when no mailbox of ours is given or named in the message.
    """
    from gateway.db.queues import enqueue_inbound
    from gateway.intake.pipe import recipients_in
    from gateway.intake.smtp import Mailboxes

    config = _config(config_path)
    ours = Mailboxes(config.mailboxes)
    for box in mailboxes:
        if not ours.accepts(box):
            click.echo(f"postdesk: {box} is not one of our mailboxes ({', '.join(config.mailboxes)})", err=True)
            sys.exit(EX_NOUSER)
    raw = sys.stdin.buffer.read()
    if not raw.strip():
        click.echo("postdesk: no message on standard input", err=True)
        sys.exit(EX_DATAERR)
    if len(raw) > config.smtp.max_message_size:
        click.echo(f"postdesk: message of {len(raw)} bytes exceeds smtp.max_message_size", err=True)
        sys.exit(EX_DATAERR)
    targets = [box.lower() for box in mailboxes] or recipients_in(raw, ours.accepts)
    if not targets:
        click.echo("postdesk: none of our mailboxes in Delivered-To, X-Original-To, To or Cc; "
                   "give --mailbox ADDR", err=True)
        sys.exit(EX_NOUSER)
    item = {"source": "pipe", "mail_from": _envelope_sender(sender), "rcpt_to": ",".join(targets), "raw": raw}
    from sqlalchemy.exc import SQLAlchemyError

    try:
        (inbound_id,) = enqueue_inbound(_engine(config), [item])
    except SQLAlchemyError as exc:
        click.echo(f"postdesk: store unavailable, try again later: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(f"queued as {inbound_id} for {', '.join(targets)}")


def _envelope_sender(sender: str | None) -> str:
    """Stored form: "" when the MTA did not say, "<>" for the null sender of a bounce."""
    if sender is None:
        return ""
    return sender.strip() if sender.strip() not in ("", "<>") else "<>"


@main.group()
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

    config = _config(config_path)
    path = target or default_path(config)
    click.echo(f"backing up {_shown_url(config)} to {path}")
    try:
        manifest = write_backup(config, _engine(config), path, say=click.echo)
    except (SQLAlchemyError, OSError) as exc:
        click.echo(f"postdesk: backup failed: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    rows = sum(manifest["tables"].values())
    click.echo(f"backup written: {path} ({path.stat().st_size} bytes, {rows} row(s) in {len(manifest['tables'])} "
               f"table(s), schema {manifest['revision']}, signing secret included, mode 0600)")


@main.command()
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

    config = _config(config_path)
    click.echo(f"restoring {file} into {_shown_url(config)}")
    try:
        manifest = restore_backup(config, file, say=click.echo)
    except RestoreError as exc:
        click.echo(f"postdesk: not restored: {exc}", err=True)
        sys.exit(1)
    except (SQLAlchemyError, OSError) as exc:
        click.echo(f"postdesk: restore failed: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(f"restored {sum(manifest['tables'].values())} row(s) of the backup made {manifest['created_at']}; "
               "start the daemon with `postdesk serve`")


def _shown_url(config: Config) -> str:
    from sqlalchemy.engine import make_url

    return make_url(config.database.url).render_as_string(hide_password=True)


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

    _show_item(get_entry(_engine(_config(config_path)), entry_id), f"quarantine entry {entry_id}", raw)


def _show_item(item: Any, what: str, raw: bool) -> None:
    """One quarantine entry or outbox mail: its summary, or its bytes as stored with --raw."""
    if item is None:
        click.echo(f"postdesk: no {what}", err=True)
        sys.exit(1)
    if raw:
        sys.stdout.buffer.write(item.raw)
        return
    click.echo(item.details())


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


@main.group()
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

    found = list_mail(_engine(_config(config_path)), state=None if state == "all" else state, to=to, kind=kind,
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

    _show_item(get_mail(_engine(_config(config_path)), mail_id), f"outbox mail {mail_id}", raw)


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
    requeued = retry(_engine(_config(config_path)), None if retry_all else list(mail_ids))
    skipped = sorted(set(mail_ids) - set(requeued))
    click.echo(f"{len(requeued)} dead mail(s) queued again")
    if skipped:
        click.echo(f"not dead, left as they are: {', '.join(map(str, skipped))}", err=True)


@main.command("route")
@config_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path, allow_dash=True))
@click.option("--mailbox", help="Which of our mailboxes it was sent to (default: the first).")
@click.option("--sender", default="", help="Envelope sender ('<>' for a bounce's null sender).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per message (JSON lines).")
@click.option("--mail-only", is_flag=True,
              help="Only read the mail (sender, kind, texts, attachments): no settings, database or rules.")
def route_command(config_path: Path | None, paths: tuple[Path, ...], mailbox: str | None, sender: str,
                  as_json: bool, mail_only: bool) -> None:
    """Show what Postdesk makes of each message in PATHS, changing nothing.

    PATHS are .eml files, folders of them, mbox files, or - for stdin. Classification, thread,
    the rules that matched for each mailbox and what they set, the new text and signature as
    they would be stored, attachments with their hashes, and the mail that would be sent.
    """
    import json

    from gateway.mail.sources import iter_messages

    route = _mail_reader(sender) if mail_only else _router(config_path, mailbox, sender)
    for label, raw, problem in iter_messages(list(paths)):
        report = {"file": label, "quarantine": problem} if raw is None else {"file": label, **route(raw)}
        if as_json:
            click.echo(json.dumps(report, ensure_ascii=False))
        else:
            click.echo(_route_text(report) if raw is not None else f"{label}: {problem}")


def _mail_reader(sender: str) -> Callable[[bytes], dict[str, Any]]:
    from gateway.mail.reading import read_mail

    envelope = sender or None
    return lambda raw: read_mail(raw, envelope=envelope)


def _router(config_path: Path | None, mailbox: str | None, sender: str) -> Callable[[bytes], dict[str, Any]]:
    from gateway.dryrun import Router, build_pipeline
    from gateway.process import Processor
    from gateway.routing.rules import DirectoryError, RulesError

    config = _config(config_path)
    logging.basicConfig(level=logging.ERROR)
    try:
        router = Router(config, Processor(None, build_pipeline(config), "dry-run"))  # type: ignore[arg-type]
    except (RulesError, DirectoryError) as exc:
        for problem in exc.problems:
            click.echo(f"postdesk: {problem}", err=True)
        sys.exit(EX_CONFIG)
    return lambda raw: router.route(raw, mailbox=mailbox, sender=sender)


def _route_text(report: dict[str, Any]) -> str:
    thread = report.get("thread", {"by": "not checked", "tickets": []})
    sender = report["sender"]
    lines = [
        f"file:          {report['file']}",
        f"from:          {sender['address'] or '(unknown)'}" + (f" ({sender['name']})" if sender["name"] else "")
        + (f", from {sender['from']}" if sender["from"] not in ("", "From") else ""),
        f"subject:       {report['subject']}",
        f"kind:          {report['kind']}" + (f" ({'; '.join(report['reasons'])})" if report["reasons"] else ""),
        "auto answer:   " + ("may be sent" if report["may_auto_answer"] else f"none ({'; '.join(report['no_answer_reasons'])})"),
        f"thread:        {thread['by']}" + (f" -> ticket {', '.join(map(str, thread['tickets']))}" if thread["tickets"] else "")
        + (f" ({thread['note']})" if thread.get("note") else ""),
    ]
    for box, decision in report.get("routing", {}).items():
        rules = ", ".join(decision["rules"]) or "no rule matched"
        lines.append(f"route {box}: {rules}")
        lines.append(f"   department {decision['department'] or '-'} (from {decision['department_from'] or '-'}), "
                     f"topic {decision['topic'] or '-'}, priority {decision['priority'] or 'normal'}, "
                     f"action {decision['action']}" + (f": {decision['action_reason']}" if decision["action_reason"] else ""))
        if decision["missing_fields"]:
            lines.append(f"   missing fields: {', '.join(decision['missing_fields'])}")
        for note in decision["notes"]:
            lines.append(f"   note: {note}")
    lines.append(f"outcome:       {report.get('outcome') or report['quarantine'] or '-'}")
    for item in report["attachments"]:
        lines.append(f"attachment:    {item['filename']} ({item['content_type']}, {item['size']} bytes, "
                     f"sha256 {item['sha256'][:16]}…)" + (f" cid {item['content_id']}" if item["content_id"] else ""))
    for mail in report.get("notifications", []):
        lines.append(f"would send:    {mail['kind']} to {mail['to']}")
    for note in report.get("notes", []):
        lines.append(f"note:          {note}")
    lines += ["text:", *("  " + line for line in report["new_text"].splitlines())]
    if report["signature"]:
        lines += ["signature:", *("  " + line for line in report["signature"].splitlines())]
    return "\n".join(lines)


@main.group()
def rules() -> None:
    """Routing rules in rules/*.yaml and the directory in config/directory.yaml."""


@rules.command("check")
@config_option
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def rules_check(config_path: Path | None, directory: Path | None) -> None:
    """Validate the rules (in DIRECTORY, default rules.dir); exit 1 with file:line: reason for each problem."""
    from gateway.routing.directory import DirectoryError, load_directory
    from gateway.routing.loader import check

    config = _config(config_path)
    folder = directory or Path(config.rules.dir)
    problems = []
    known = None
    try:
        if Path(config.rules.directory).exists():
            known = load_directory(Path(config.rules.directory))
    except DirectoryError as exc:
        problems.extend(exc.problems)
    problems.extend(check(folder, known=known))
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s); the running daemon keeps the rules in force until they load", err=True)
        sys.exit(1)
    click.echo(f"{folder}: rules OK")


@rules.command("list")
@config_option
def rules_list(config_path: Path | None) -> None:
    """The rules in force, in evaluation order."""
    from gateway.routing.runtime import load_routing

    routing = load_routing(_config(config_path))
    for rule in routing.rules:
        click.echo(f"{rule.file}:{rule.line}: {rule.name}")


@main.command("directory")
@config_option
@click.argument("what", type=click.Choice(["departments", "organisations", "topics", "agents"]))
def directory_command(config_path: Path | None, what: str) -> None:
    """List departments (as a tree), organisations, help topics or agents."""
    from gateway.routing.runtime import load_routing

    config = _config(config_path)
    directory = load_routing(config).directory
    if what == "departments":
        def show(name: str, depth: int) -> None:
            dept = directory.departments[name]
            click.echo(f"{'  ' * depth}{name}: {dept.title or name} (manager {dept.manager or '-'}; "
                       f"{len(dept.members)} member(s))")
            for child in directory.children(name):
                show(child.name, depth + 1)
        for name, dept in directory.departments.items():
            if dept.parent is None:
                show(name, 0)
    elif what == "organisations":
        for org in directory.organisations.values():
            click.echo(f"{org.name}: domains {', '.join(org.domains) or '-'} -> {org.department or '-'}; "
                       f"managers {', '.join(org.managers) or '-'}")
    elif what == "topics":
        for topic in directory.topics.values():
            click.echo(f"{topic.name}: -> {topic.department or '-'}; required {', '.join(topic.required_fields) or '-'}")
    else:
        _list_agents(config)


def _list_agents(config: Config) -> None:
    from gateway.routing.runtime import load_routing

    load_routing(config)  # the directory's departments are the staff
    roles = {"agent": "agent", "manager": "department manager", "lead": "support lead"}
    if not config.staff:
        click.echo(f"no staff: name members and managers of departments in {config.rules.directory}")
    for agent in config.staff:
        click.echo(f"{agent.name} <{agent.address}>: {roles[agent.role]}; departments "
                   f"{', '.join(agent.departments) or '-'}; mail in {agent.language or config.tickets.language}")


@main.group()
def agents() -> None:
    """The people who work tickets, on the web and from their own mail client."""


@agents.command("list")
@config_option
def agents_list(config_path: Path | None) -> None:
    """Each person: name, address, role and departments (members and managers in the directory)."""
    _list_agents(_config(config_path))


@main.group()
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

    from gateway.intake.imap import find_account, test_account

    config = _config(config_path)
    if find_account(config, account) is None:
        names = ", ".join(a.name for a in config.imap.accounts) or "none configured"
        click.echo(f"postdesk: no IMAP account {account!r} (accounts: {names})", err=True)
        sys.exit(EX_CONFIG)
    if not asyncio.run(test_account(config, account, click.echo)):
        sys.exit(1)


@main.group()
def ticket() -> None:
    """Look at and work tickets from the command line (agents can also work them by mail)."""


def _ticket_action(config_path: Path | None, number: int, work: Callable[..., Any]) -> Any:
    from gateway.daemon import build_pipeline
    from gateway.tickets.actions import ActionError, by_number
    from gateway.tickets.events import Events

    config = _config(config_path)
    notifier = build_pipeline(config).notifier
    try:
        with _engine(config).begin() as conn:
            events = Events(config)
            done = work(conn, events, by_number(conn, number))
            notifier.send(conn, events.items)
            return done
    except ActionError as exc:
        click.echo(f"postdesk: {exc}", err=True)
        sys.exit(1)


@ticket.command("show")
@config_option
@click.argument("number", type=int)
def ticket_show(config_path: Path | None, number: int) -> None:
    """The ticket, its SLA clocks (elapsed, paused, due, breached) and its history."""
    from gateway.tickets.show import describe

    click.echo(_ticket_action(config_path, number, lambda conn, notifier, t: describe(conn, notifier.config, t)))


@ticket.command("assign")
@config_option
@click.argument("number", type=int)
@click.argument("agent")
@click.option("--by", "actor", default="cli", help="Who did it, for the history.")
def ticket_assign(config_path: Path | None, number: int, agent: str, actor: str) -> None:
    """Give ticket NUMBER to AGENT (an address from agents:); a new ticket goes in progress."""
    from gateway.tickets.actions import assign

    t = _ticket_action(config_path, number, lambda conn, notifier, t: assign(conn, notifier, t, agent, actor=actor))
    click.echo(f"ticket {number} assigned to {t.assignee} ({t.status})")


@ticket.command("status")
@config_option
@click.argument("number", type=int)
@click.argument("status", type=click.Choice(["new", "in_progress", "waiting_customer", "waiting_third_party",
                                             "resolved", "closed"]))
@click.option("--message", "-m", default="", help="Text for the customer (the question, when waiting on them).")
@click.option("--by", "actor", default="cli", help="Who did it, for the history.")
def ticket_status(config_path: Path | None, number: int, status: str, message: str, actor: str) -> None:
    """Move ticket NUMBER to STATUS; the customer gets what the notification matrix says."""
    from gateway.tickets.actions import set_status
    from gateway.tickets.lifecycle import Status

    t = _ticket_action(config_path, number, lambda conn, notifier, t: set_status(
        conn, notifier, t, Status(status), actor=actor, text=message))
    click.echo(f"ticket {number} is now {t.status}")


@ticket.command("reply")
@config_option
@click.argument("number", type=int)
@click.option("--message", "-m", required=True, help="The reply; '-' reads it from standard input.")
@click.option("--by", "actor", default="cli", help="The agent replying (takes a new ticket).")
def ticket_reply(config_path: Path | None, number: int, message: str, actor: str) -> None:
    """Send a public reply to the customer of ticket NUMBER."""
    from gateway.tickets.actions import reply

    text = sys.stdin.read() if message == "-" else message
    t = _ticket_action(config_path, number, lambda conn, notifier, t: reply(conn, notifier, t, text, actor=actor))
    click.echo(f"reply queued for ticket {number} ({t.status})")


@ticket.command("note")
@config_option
@click.argument("number", type=int)
@click.argument("text")
@click.option("--by", "actor", default="cli", help="Who wrote it.")
def ticket_note(config_path: Path | None, number: int, text: str, actor: str) -> None:
    """Add an internal note (never sent to the customer)."""
    from gateway.tickets.actions import note

    _ticket_action(config_path, number, lambda conn, notifier, t: note(conn, t, text, actor=actor))
    click.echo(f"note added to ticket {number}")


@main.group()
def report() -> None:
    """Summaries for managers."""


@report.command("feedback")
@config_option
def report_feedback(config_path: Path | None) -> None:
    """Customer ratings per agent: count, average, distribution and the latest comments."""
    from gateway.tickets.show import feedback_report

    with _engine(_config(config_path)).connect() as conn:
        click.echo(feedback_report(conn))


@main.group()
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

    from gateway.tickets.store import CUSTOMER, customer as register

    email = email.strip().lower()
    if email.count("@") != 1 or email.startswith("@") or email.endswith("@"):
        raise click.UsageError(f"{email!r} is not an e-mail address")
    values: dict[str, Any] = {}
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
    config = _config(config_path)
    with _engine(config).begin() as conn:
        known = conn.execute(CUSTOMER.select().where(CUSTOMER.c.email == email)).first() is not None
        if not known:
            register(conn, email, values.get("name", ""), organisation or _organisation_of(config, email))
        if values:
            conn.execute(update(CUSTOMER).where(CUSTOMER.c.email == email).values(**values))
        row = conn.execute(CUSTOMER.select().where(CUSTOMER.c.email == email)).one()
    settings = (f"name {row.name or '-'}, language {row.language or '-'}, time zone {row.timezone or '-'}, organisation {row.organisation or '-'}, "
                f"status mail {'off' if row.notifications_off else 'on'}")
    click.echo(f"{email}: {'updated' if known else 'created'}; {settings}")


def _organisation_of(config: Config, email: str) -> str | None:
    from gateway.routing.runtime import load_routing

    org = load_routing(config).directory.organisation_for(email)
    return org.name if org else None
