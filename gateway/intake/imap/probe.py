"""`postdesk imap test`: what an import of one account would do, found out without changing anything.

The probe logs in as the daemon would, examines the folder read-only (no flag set, no folder
created), compares it with the stored cursor and lists what the next import would take and
where it would put it afterwards.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from email.message import Message

import aioimaplib
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import Config, ImapAccount
from gateway.db.engine import make_engine
from gateway.intake.imap.cursor import count_pending, read_cursor
from gateway.intake.imap.runner import REIDLE_SECONDS, account_problems, describe
from gateway.intake.imap.session import Folder, Session
from gateway.intake.imap.wire import ImapError, LoginRefused, uid_set

Echo = Callable[[str], None]
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_FAILURES = (OSError, TimeoutError, ImapError, aioimaplib.AioImapException)


def find_account(config: Config, name: str) -> ImapAccount | None:
    """The configured account of that name, if there is one."""
    return next((account for account in config.imap.accounts if account.name == name), None)


async def test_account(config: Config, name: str, echo: Echo) -> bool:
    """Connect, examine the folder read-only and say what an import would do; True if it can run."""
    account = find_account(config, name)
    assert account is not None, "the caller checks the name"
    echo(f"account {account.name}: user {account.user} at {account.host}:{account.port} (tls: {account.tls}), "
         f"folder {account.folder}, mail counts as sent to {account.mailbox}")
    problems = account_problems(config, account)
    for problem in problems:
        echo(f"problem: {problem}")
    try:
        session = await Session.open(account)
    except LoginRefused as exc:
        echo(f"login refused: {exc}")
        return False
    except _FAILURES as exc:
        echo(f"cannot connect: {describe(exc)}")
        return False
    try:
        await _examine(config, account, session, echo)
    except _FAILURES as exc:
        echo(f"failed: {describe(exc)}")
        return False
    finally:
        await session.close()
    return not problems


async def _examine(config: Config, account: ImapAccount, session: Session, echo: Echo) -> None:
    offered = ", ".join(f"{name} {'yes' if session.has(name) else 'no'}" for name in ("IDLE", "MOVE", "UIDPLUS"))
    echo(f"logged in; server capabilities that matter here: {offered}")
    folder = await session.select(account.folder, readonly=True)
    echo(f"folder {folder.name}: {folder.exists} message(s), UIDVALIDITY {folder.uidvalidity}")
    last_uid = _report_cursor(config, account, folder, echo)
    listed = await session.list_new(last_uid) if folder.exists else []
    await _report_import(session, account, listed, echo)
    if account.idle and session.has("IDLE"):
        reidle = min(REIDLE_SECONDS, account.poll_interval)
        echo(f"new mail would be noticed at once by IDLE (re-issued every {reidle:.0f} s)")
    else:
        reason = "idle: false" if not account.idle else "the server offers no IDLE"
        echo(f"new mail would be noticed by polling every {account.poll_interval:g} s ({reason})")
    echo("nothing was changed: the folder was examined read-only")


def _report_cursor(config: Config, account: ImapAccount, folder: Folder, echo: Echo) -> int:
    """Say what the store holds for the folder; the UID an import would start above."""
    engine = make_engine(config.database.url, pool_size=1)
    try:
        stored = read_cursor(engine, account.name, folder.name)
        pending = count_pending(engine, account.name, folder.name, folder.uidvalidity) if stored else 0
    except SQLAlchemyError:
        stored, pending = None, 0
    finally:
        engine.dispose()
    if stored is None:
        echo("stored state: none yet, so the first import takes every message in the folder")
        return 0
    uidvalidity, last_uid = stored
    if uidvalidity != folder.uidvalidity:
        echo(f"stored state: UIDVALIDITY {uidvalidity} differs (folder recreated?): every message would be imported "
             "again, and what was imported before recognised by Message-ID and body")
        return 0
    echo(f"stored state: imported up to UID {last_uid}")
    if pending:
        echo(f"{pending} message(s) imported by an interrupted run still wait to be {account.after_import}ed; "
             "the daemon does that first")
    return last_uid


async def _report_import(session: Session, account: ImapAccount, listed: list[tuple[int, int]], echo: Echo) -> None:
    """Name the messages an import would take (the first ten), then what would become of them."""
    if not listed:
        echo("would import nothing: no message above the stored UID")
        return
    size = sum(item[1] for item in listed)
    echo(f"would import {len(listed)} message(s), UIDs {uid_set(uid for uid, _ in listed)}, {size} bytes, "
         f"as mail to {account.mailbox}:")
    shown = listed[:10]
    headers = await session.fetch([uid for uid, _ in shown], "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]")
    for uid, item_size in shown:
        raw, line = headers.get(uid, (b"", b""))
        message = email.message_from_bytes(raw, policy=email.policy.default)
        flags = _FLAGS.search(line)
        seen = ", already seen" if flags and b"\\Seen" in flags.group(1) else ""
        echo(f"  UID {uid}: from {_header(message, 'From', '?')}, "
             f"subject {_header(message, 'Subject', '(none)')!r} ({item_size} bytes{seen})")
    if len(listed) > len(shown):
        echo(f"  ... and {len(listed) - len(shown)} more")
    if account.after_import == "move":
        exists = await session.folder_exists(account.move_to)
        echo(f"then move them to {account.move_to}" + ("" if exists else " (created at the first import)"))
    else:
        echo("then flag them \\Seen and leave them where they are")


def _header(message: Message, name: str, default: str) -> str:
    """A header decoded (RFC 2047) for the screen; a header too broken to read shows as `default`."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):
        return default
    return str(value) if value else default
