"""`postdesk route PATHS`: what Postdesk makes of each message, changing nothing (gateway.dryrun).

The text form is for people; `--json` prints the same report as JSON lines for tools.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import EX_CONFIG, config_option, fail, settings

Report = dict[str, Any]


@click.command("route")
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
            click.echo(route_text(report) if raw is not None else f"{label}: {problem}")


def _mail_reader(sender: str) -> Callable[[bytes], Report]:
    from gateway.mail.reading import read_mail

    envelope = sender or None
    return lambda raw: read_mail(raw, envelope=envelope)


def _router(config_path: Path | None, mailbox: str | None, sender: str) -> Callable[[bytes], Report]:
    from gateway.dryrun import Router
    from gateway.routing.router import DirectoryError, RulesError

    config = settings(config_path)
    logging.basicConfig(level=logging.ERROR)
    try:
        router = Router.for_config(config)
    except (RulesError, DirectoryError) as exc:
        for problem in exc.problems:
            click.echo(f"postdesk: {problem}", err=True)
        fail("the rules do not load: fix them (`postdesk rules check`)", EX_CONFIG)
    return lambda raw: router.route(raw, mailbox=mailbox, sender=sender)


def route_text(report: Report) -> str:
    """The report as an admin reads it: one labelled line per decision, then the texts."""
    return "\n".join([*_head(report), *_routing(report), *_tail(report)])


def _head(report: Report) -> list[str]:
    thread = report.get("thread", {"by": "not checked", "tickets": []})
    sender = report["sender"]
    answer = "may be sent" if report["may_auto_answer"] else f"none ({'; '.join(report['no_answer_reasons'])})"
    return [
        f"file:          {report['file']}",
        f"from:          {sender['address'] or '(unknown)'}" + (f" ({sender['name']})" if sender["name"] else "")
        + (f", from {sender['from']}" if sender["from"] not in ("", "From") else ""),
        f"subject:       {report['subject']}",
        f"kind:          {report['kind']}" + (f" ({'; '.join(report['reasons'])})" if report["reasons"] else ""),
        f"auto answer:   {answer}",
        f"thread:        {thread['by']}" + (f" -> ticket {', '.join(map(str, thread['tickets']))}" if thread["tickets"] else "")
        + (f" ({thread['note']})" if thread.get("note") else ""),
    ]


def _routing(report: Report) -> list[str]:
    lines = []
    for box, decision in report.get("routing", {}).items():
        lines.append(f"route {box}: {', '.join(decision['rules']) or 'no rule matched'}")
        lines.append(f"   department {decision['department'] or '-'} (from {decision['department_from'] or '-'}), "
                     f"topic {decision['topic'] or '-'}, priority {decision['priority'] or 'normal'}, "
                     f"action {decision['action']}" + (f": {decision['action_reason']}" if decision["action_reason"] else ""))
        if decision["missing_fields"]:
            lines.append(f"   missing fields: {', '.join(decision['missing_fields'])}")
        lines.extend(f"   note: {note}" for note in decision["notes"])
    return lines


def _tail(report: Report) -> list[str]:
    lines = [f"outcome:       {report.get('outcome') or report['quarantine'] or '-'}"]
    for item in report["attachments"]:
        lines.append(f"attachment:    {item['filename']} ({item['content_type']}, {item['size']} bytes, "
                     f"sha256 {item['sha256'][:16]}…)" + (f" cid {item['content_id']}" if item["content_id"] else ""))
    lines.extend(f"would send:    {mail['kind']} to {mail['to']}" for mail in report.get("notifications", []))
    lines.extend(f"note:          {note}" for note in report.get("notes", []))
    lines += ["text:", *("  " + line for line in report["new_text"].splitlines())]
    if report["signature"]:
        lines += ["signature:", *("  " + line for line in report["signature"].splitlines())]
    return lines
