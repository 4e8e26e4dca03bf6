"""The daemon's IMAP import: one runner per account, reconnecting for as long as the daemon runs.

An `AccountRunner` owns one account. It selects the folder and imports every message whose UID is
above the stored cursor, oldest first, whether or not another client already marked it `\\Seen`,
a chunk at a time (`gateway.intake.imap.cursor` commits each); only then is the chunk moved or
flagged on the server. New mail is noticed through IDLE where the server offers it (ended and
re-issued well before the 30 minutes after which servers drop it), otherwise by polling.
Connection errors reconnect after growing pauses; a refused login is logged once and tried
again only every few minutes. `ImapIntake` starts and stops the runners for the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TypeVar

import aioimaplib
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import Config, ImapAccount
from gateway.intake.imap import cursor
from gateway.intake.imap.cursor import FolderKey
from gateway.intake.imap.session import Folder, Session
from gateway.intake.imap.wire import ConnectionLost, ImapError, LoginRefused, uid_set, wait_any

log = logging.getLogger("gateway.imap")
T = TypeVar("T")

# Servers may drop an IDLE after 30 minutes (RFC 2177); ending it sooner also re-checks the
# folder, which covers a server that failed to push. `poll_interval` shortens it further.
REIDLE_SECONDS = 300.0
# A refused login is a setting to fix, not a hiccup: retrying every second would lock the
# account on servers that count failures, and fill the log.
LOGIN_RETRY_SECONDS = 300.0
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
# One transaction per chunk: large enough to amortise the commit, small enough that a
# restart in the middle redoes little.
CHUNK_MESSAGES, CHUNK_BYTES = 20, 8 * 1024 * 1024


def chunks(listed: Sequence[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Split (UID, size) pairs into import chunks by count and bytes, order kept."""
    out: list[list[tuple[int, int]]] = []
    size = 0
    for item in listed:
        if not out or len(out[-1]) >= CHUNK_MESSAGES or size + item[1] > CHUNK_BYTES:
            out.append([])
            size = 0
        out[-1].append(item)
        size += item[1]
    return out


def describe(exc: BaseException) -> str:
    """An error in words for the log: our own errors as they are, others with their class."""
    text = str(exc) or exc.__class__.__name__
    return text if isinstance(exc, ImapError) else f"{exc.__class__.__name__}: {text}"


def account_problems(config: Config, account: ImapAccount) -> list[str]:
    """What keeps an account from running, in words for the admin."""
    problems = []
    if account.mailbox.lower() not in config.mailboxes:
        problems.append(f"mailbox {account.mailbox} is not one of our mailboxes ({', '.join(config.mailboxes)})")
    if account.after_import == "move" and account.move_to == account.folder:
        problems.append(f"move_to is the watched folder {account.folder}: imported mail would come back")
    if [a.name for a in config.imap.accounts].count(account.name) > 1:
        problems.append(f"the account name {account.name} is used twice; the import state is kept by name")
    return problems


class AccountRunner:
    """Imports one account's folder for as long as the daemon runs; logs its errors, never raises."""

    def __init__(self, account: ImapAccount, engine: Engine, executor: Executor, *,
                 on_commit: Callable[[], None], stop: asyncio.Event) -> None:
        self.account = account
        self.engine = engine
        self.executor = executor
        self.on_commit = on_commit
        self.stop = stop
        self.last_uid = 0
        self.trouble = ""  # the last error logged: repeats of it are not logged again
        self.healthy = False

    @property
    def name(self) -> str:
        return self.account.name

    async def run(self) -> None:
        delay = BACKOFF_FIRST
        while not self.stop.is_set():
            self.healthy = False
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except LoginRefused as exc:
                self._report(logging.ERROR, f"cannot log in to {self.account.host}:{self.account.port}: {exc}; "
                                            f"check user, password/password_file and tls; "
                                            f"trying again every {LOGIN_RETRY_SECONDS / 60:.0f} min")
                await wait_any((self.stop,), LOGIN_RETRY_SECONDS)
                continue
            except (OSError, TimeoutError, ImapError, aioimaplib.AioImapException, SQLAlchemyError) as exc:
                self._report(logging.WARNING, f"{describe(exc)}; reconnecting")
            except Exception:
                # A bug must not end the account's import: log it whole and start again.
                log.exception("%s: unexpected error; reconnecting", self.name)
                self.trouble = "unexpected error"
            if self.healthy:
                delay = BACKOFF_FIRST
            await wait_any((self.stop,), delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_MAX)

    def _report(self, level: int, message: str) -> None:
        log.log(level if message != self.trouble else logging.DEBUG, "%s: %s", self.name, message)
        self.trouble = message

    async def _db(self, func: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    async def _serve(self) -> None:
        account = self.account
        session = await Session.open(account)
        try:
            folder = await session.select(account.folder)
            if account.after_import == "move":
                await session.ensure_folder(account.move_to)
            key = await self._open_cursor(folder)
            await self._sync(session, key)
            idle = account.idle and session.has("IDLE")
            how = (f"IDLE (re-issued every {self._reidle():.0f} s)" if idle
                   else f"polling every {account.poll_interval:g} s")
            log.info("%s: %swatching %s on %s:%d: %d message(s) there, UIDVALIDITY %d; new mail by %s",
                     self.name, "working again; " if self.trouble else "", account.folder,
                     account.host, account.port, folder.exists, folder.uidvalidity, how)
            self.trouble, self.healthy = "", True
            while not self.stop.is_set():
                news = await session.wait_for_news(self._reidle() if idle else account.poll_interval, self.stop,
                                                   idle=idle)
                if self.stop.is_set():
                    break
                if not news:
                    # A quiet spell (poll tick, re-IDLE): select again, which shows new mail to
                    # servers that need a nudge and a folder recreated by servers that say nothing.
                    again = await session.select(account.folder)
                    if again.uidvalidity != key.uidvalidity:
                        raise ImapError(f"UIDVALIDITY of {account.folder} changed while selected")
                await self._sync(session, key)
        finally:
            await session.close()

    def _reidle(self) -> float:
        return min(REIDLE_SECONDS, self.account.poll_interval)

    async def _open_cursor(self, folder: Folder) -> FolderKey:
        key = FolderKey(self.name, folder.name, folder.uidvalidity)
        self.last_uid, before = await self._db(cursor.open_cursor, self.engine, key)
        if before is not None:
            log.warning("%s: UIDVALIDITY of %s changed from %d to %d (folder recreated or restored): importing its "
                        "%d message(s) again; what was imported before is recognised by Message-ID and body",
                        self.name, folder.name, before, folder.uidvalidity, folder.exists)
        return key

    async def _sync(self, session: Session, key: FolderKey) -> None:
        """Finish interrupted moves, then import everything above the cursor, chunk by chunk."""
        left = await self._db(cursor.pending_uids, self.engine, key)
        if left:
            log.info("%s: finishing the %s of %d message(s) imported before an interruption (UIDs %s)",
                     self.name, self.account.after_import, len(left), uid_set(left))
            await self._after_import(session, key, left)
        while not self.stop.is_set():
            session.protocol.news.clear()
            listed = await session.list_new(self.last_uid)
            for chunk in chunks(listed):
                await self._import(session, key, [uid for uid, _size in chunk])
                if self.stop.is_set():
                    return
            # Mail announced while we listed (news) may not be in the listing: look again.
            if not listed and not session.protocol.news.is_set():
                return

    async def _import(self, session: Session, key: FolderKey, uids: list[int]) -> None:
        bodies = await self._fetch(session, uids)
        messages = [(uid, bodies[uid]) for uid in uids if uid in bodies]
        mailbox = self.account.mailbox.lower()
        ids = await self._db(cursor.commit_messages, self.engine, key, mailbox, messages, max(uids))
        self.last_uid = max(self.last_uid, max(uids))
        if ids:
            self.on_commit()
            log.info("%s: imported %d message(s), UIDs %s, as inbound %s", self.name, len(ids),
                     uid_set(uid for uid, _ in messages), uid_set(ids))
        if messages:
            await self._after_import(session, key, [uid for uid, _ in messages])

    async def _fetch(self, session: Session, uids: list[int]) -> dict[int, bytes]:
        try:
            fetched = await session.fetch(uids)
        except ConnectionLost:
            raise
        except ImapError as exc:
            if len(uids) == 1:
                log.error("%s: the server will not hand out UID %d (%s): it stays in %s, not imported",
                          self.name, uids[0], exc, self.account.folder)
                return {}
            # One message the server cannot read must not hold back the others: one at a time.
            found: dict[int, bytes] = {}
            for uid in uids:
                found.update(await self._fetch(session, [uid]))
            return found
        found = {uid: raw for uid, (raw, _line) in fetched.items()}
        gone = [uid for uid in uids if uid not in found]
        if gone:
            log.warning("%s: UID(s) %s left %s before they could be fetched (deleted by another client?)",
                        self.name, uid_set(gone), self.account.folder)
        return found

    async def _after_import(self, session: Session, key: FolderKey, uids: list[int]) -> None:
        if self.account.after_import == "move":
            await session.move(uids, self.account.move_to)
        else:
            await session.flag_seen(uids)
        await self._db(cursor.mark_done, self.engine, key, uids)


class ImapIntake:
    """The daemon's IMAP accounts: one runner task each, started and stopped together."""

    def __init__(self, config: Config, engine: Engine, executor: Executor, *, on_commit: Callable[[], None]) -> None:
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.runners: list[AccountRunner] = []
        for account in config.imap.accounts:
            problems = account_problems(config, account)
            if problems:
                log.error("%s: not imported: %s", account.name, "; ".join(problems))
                continue
            self.runners.append(AccountRunner(account, engine, executor, on_commit=on_commit, stop=self._stop))

    def start(self) -> None:
        # aioimaplib logs unexpected server lines at INFO and everything it sends at DEBUG.
        logging.getLogger("aioimaplib").setLevel(max(logging.WARNING, logging.getLogger().level))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(runner.run(), name=f"imap-{runner.name}") for runner in self.runners]

    async def close(self, timeout: float = 10.0) -> None:
        """Stop every runner: a chunk being imported finishes, an IDLE ends at once."""
        self._stop.set()
        if not self._tasks:
            return
        _done, busy = await asyncio.wait(self._tasks, timeout=timeout)
        for task in busy:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
