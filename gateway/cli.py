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
    for noisy in ("mail.log", "alembic", "mailparser"):
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
@click.option("--mailbox", help="Which of our mailboxes the message was sent to (default: the first).")
@click.option("--sender", default=None, help="Envelope sender as the MTA saw it (empty: the null sender of a bounce).")
def inject(config_path: Path | None, mailbox: str | None, sender: str | None) -> None:
    """Queue one message read from standard input, as from an MTA pipe.

    Exits 0 once the message is committed, 75 when the store is unavailable (the MTA retries).
    """
    from gateway.db.queues import enqueue_inbound
    from gateway.intake.smtp import Mailboxes

    config = _config(config_path)
    target = (mailbox or config.mailboxes[0]).lower()
    if not Mailboxes(config.mailboxes).accepts(target):
        click.echo(f"postdesk: {target} is not one of our mailboxes ({', '.join(config.mailboxes)})", err=True)
        sys.exit(EX_NOUSER)
    raw = sys.stdin.buffer.read()
    if not raw.strip():
        click.echo("postdesk: no message on standard input", err=True)
        sys.exit(EX_DATAERR)
    if len(raw) > config.smtp.max_message_size:
        click.echo(f"postdesk: message of {len(raw)} bytes exceeds smtp.max_message_size", err=True)
        sys.exit(EX_DATAERR)
    from sqlalchemy.exc import SQLAlchemyError

    try:
        (inbound_id,) = enqueue_inbound(
            _engine(config), [{"source": "pipe", "mail_from": _envelope_sender(sender), "rcpt_to": target, "raw": raw}]
        )
    except SQLAlchemyError as exc:
        click.echo(f"postdesk: store unavailable, try again later: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(f"queued as {inbound_id}")


def _envelope_sender(sender: str | None) -> str:
    """Stored form: "" when the MTA did not say, "<>" for the null sender of a bounce."""
    if sender is None:
        return ""
    return sender.strip() if sender.strip() not in ("", "<>") else "<>"


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

    entry = get_entry(_engine(_config(config_path)), entry_id)
    if entry is None:
        click.echo(f"postdesk: no quarantine entry {entry_id}", err=True)
        sys.exit(1)
    if raw:
        sys.stdout.buffer.write(entry.raw)
        return
    click.echo(entry.details())


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
    roles = {"agent": "agent", "manager": "department manager", "lead": "support lead"}
    if not config.agents:
        click.echo("no agents configured (agents: in the settings file)")
    for agent in config.agents:
        click.echo(f"{agent.name} <{agent.address}>: {roles[agent.role]}; departments "
                   f"{', '.join(agent.departments) or '-'}; mail in {agent.language or config.tickets.language}")


@main.group()
def agents() -> None:
    """The people who work tickets, on the web and from their own mail client."""


@agents.command("list")
@config_option
def agents_list(config_path: Path | None) -> None:
    """Each agent: name, address, role and departments (the agents: section of the settings)."""
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

    config = _config(config_path)
    notifier = build_pipeline(config).notifier
    try:
        with _engine(config).begin() as conn:
            return work(conn, notifier, by_number(conn, number))
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
@click.option("--language", type=click.Choice(["en", "sv", "ro"]), help="Language of their mail.")
@click.option("--organisation", help="Add them to an organisation by hand.")
@click.option("--status-mail", type=click.Choice(["on", "off"]),
              help="off: no status-change mail (questions and the resolution still go out).")
def customer_set(config_path: Path | None, email: str, language: str | None, organisation: str | None,
                 status_mail: str | None) -> None:
    """Change a customer's settings."""
    from sqlalchemy import update

    from gateway.tickets.store import CUSTOMER

    values: dict[str, Any] = {}
    if language:
        values["language"] = language
    if organisation:
        values["organisation"] = organisation
    if status_mail:
        values["notifications_off"] = status_mail == "off"
    if not values:
        raise click.UsageError("nothing to change: give --language, --organisation or --status-mail")
    with _engine(_config(config_path)).begin() as conn:
        changed = conn.execute(update(CUSTOMER).where(CUSTOMER.c.email == email.lower()).values(**values)).rowcount
    if not changed:
        click.echo(f"postdesk: no customer {email}", err=True)
        sys.exit(1)
    click.echo(f"{email}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
