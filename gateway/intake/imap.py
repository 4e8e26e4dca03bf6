"""IMAP intake: each configured account's folder imported into the inbound queue, by UID, once.

An `AccountRunner` owns one account. It connects (implicit TLS, STARTTLS, or plain where the
admin allowed it), selects the folder and imports every message whose UID is above the stored
cursor, oldest first, whether or not another client already marked it `\\Seen`. A chunk of
messages is committed to the inbound queue together with one `imapseen` row per UID and the new
cursor, in one transaction; only then is the chunk moved or flagged on the server and its rows
marked done. A run cut off between the two finds those rows pending on its next connection and
finishes the move, without importing the UIDs again. The cursor is stored with the folder's
UIDVALIDITY: when the server renumbers the folder, the import starts again from UID 1 and the
processor recognises what it already has by Message-ID and body hash.

New mail is noticed through IDLE where the server offers it (ended and re-issued well before the
30 minutes after which servers drop it), otherwise by polling. Connection errors reconnect after
growing pauses; a refused login is logged once and tried again only every few minutes.

`ImapIntake` runs the runners for the daemon; `test_account` is `postdesk imap test`.
"""

from __future__ import annotations

import asyncio
import base64
import email
import logging
import os
import random
import re
import signal
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

import aioimaplib
from sqlalchemy import Engine, Table, and_, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import Config, ImapAccount
from gateway.db.engine import make_engine
from gateway.clock import utcnow
from gateway.db.models import ImapSeen, ImapState
from gateway.db.normalise import raw_message_id
from gateway.db.queues import INBOUND
from gateway.mail.parse import decode_text

log = logging.getLogger("gateway.imap")
T = TypeVar("T")

IMAPSTATE: Table = ImapState.__table__  # type: ignore[attr-defined]
IMAPSEEN: Table = ImapSeen.__table__  # type: ignore[attr-defined]

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
# Test-only fault injection (tests/test_imap.py); the POSTDESK_ prefix is taken by settings.
CRASH_AFTER_COMMIT_ENV = "TEST_POSTDESK_IMAP_CRASH_AFTER_COMMIT"
HOLD_AFTER_COMMIT_ENV = "TEST_POSTDESK_IMAP_HOLD_AFTER_COMMIT"

_EXISTS = re.compile(rb"\* \d+ EXISTS")
# Untagged NO or BYE, or a new UIDVALIDITY, outside any command of ours: the folder changed under
# us (Dovecot answers a deletion of the selected folder with "* NO Internal error" and goes on).
_ALARM = re.compile(rb"\* (NO|BYE)\b|\* OK \[UIDVALIDITY ")
_FETCH_START = re.compile(rb"\d+ FETCH \(")
_UID = re.compile(rb"[( ]UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")


class ImapError(Exception):
    """The server refused a command or the connection failed; the runner reconnects."""


class ConnectionLost(ImapError):
    """The server closed the connection (restart, idle timeout, network)."""


class LoginRefused(ImapError):
    """The server will not let us in with these settings; retried only every few minutes."""


# -- the wire: aioimaplib plus what it lacks -------------------------------------------------


class _Protocol(aioimaplib.IMAP4ClientProtocol):
    """aioimaplib's protocol with two events it does not offer: new mail, and connection lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: Any = None) -> None:
        super().__init__(loop, conn_lost_cb)
        self.news = asyncio.Event()
        self.lost = asyncio.Event()
        self.alarm = asyncio.Event()
        self.alarm_line = b""

    def _untagged_response(self, line: bytes) -> Any:
        # aioimaplib drops an EXISTS that comes with a command it does not expect it for. A
        # message announced at the end of our last command would then wait for the next re-IDLE.
        if _EXISTS.match(line):
            self.news.set()
        elif _ALARM.match(line):
            self.alarm_line = line
            self.alarm.set()
        return super()._untagged_response(line)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        super().connection_lost(exc)


class _Client(aioimaplib.IMAP4):
    protocol: _Protocol

    def create_client(self, host: str, port: int, loop: Any, conn_lost_cb: Any = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:
        super().create_client(host, port, loop, conn_lost_cb, ssl_context)
        # The connection task calls `lambda: self.protocol` only once connected, so the
        # protocol swapped in here is the one that gets the transport.
        self.protocol = _Protocol(self.protocol.loop, conn_lost_cb)


@dataclass(frozen=True)
class Folder:
    name: str
    uidvalidity: int
    exists: int


class Session:
    """One logged-in connection to an account's server, with the commands the import needs."""

    def __init__(self, account: ImapAccount, client: _Client) -> None:
        self.account = account
        self.client = client
        self.timeout = account.timeout

    @property
    def protocol(self) -> _Protocol:
        return self.client.protocol

    @classmethod
    async def open(cls, account: ImapAccount) -> Session:
        context = ssl.create_default_context() if account.tls != "plain" else None
        client = _Client(account.host, account.port, timeout=account.timeout,
                         ssl_context=context if account.tls == "implicit" else None)
        session = cls(account, client)
        try:
            await session._race(client.wait_hello_from_server(), account.timeout)
            if account.tls == "starttls":
                assert context is not None
                await session._starttls(context)
            await session._login(read_password(account))
        except BaseException:
            session.abort()
            raise
        return session

    def has(self, capability: str) -> bool:
        return self.client.has_capability(capability)

    async def _race(self, awaitable: Awaitable[T], timeout: float | None) -> T:
        """Await `awaitable`, giving up as soon as the connection drops or `timeout` passes."""
        task = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self.protocol.lost.wait())
        try:
            done, _ = await asyncio.wait((task, lost), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if task in done:
            return task.result()
        if lost in done:
            raise ConnectionLost("the server closed the connection")
        raise ImapError(f"no answer within {timeout:.0f} s")

    async def _ok(self, what: str, awaitable: Awaitable[aioimaplib.Response], *,
                  patient: bool = False) -> aioimaplib.Response:
        """Await a command and insist on OK; `patient` drops the overall timeout."""
        response = await self._race(awaitable, None if patient else self.timeout)
        if response.result != "OK":
            raise ImapError(f"{what} failed: {response.result} {_text(response)}")
        return response

    async def _starttls(self, context: ssl.SSLContext) -> None:
        if not self.has("STARTTLS"):
            raise LoginRefused("the server does not offer STARTTLS (tls: implicit on port 993 may work)")
        protocol = self.protocol
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        await self._ok("STARTTLS", protocol.execute(command))
        # aioimaplib 2.0 has no STARTTLS: upgrade its transport in place, then ask for the
        # capabilities again, as they may differ once the connection is private (RFC 3501 6.2.1).
        loop = asyncio.get_running_loop()
        protocol.transport = await self._race(
            loop.start_tls(protocol.transport, protocol, context, server_hostname=self.account.host), self.timeout)
        await self._race(protocol.capability(), self.timeout)

    async def _login(self, password: str) -> None:
        if self.has("LOGINDISABLED"):
            raise LoginRefused("the server refuses LOGIN without TLS (LOGINDISABLED): use tls: starttls or implicit")
        response = await self._race(self.client.login(aioimaplib.quoted(self.account.user), password), self.timeout)
        if response.result != "OK":
            text = _text(response)
            if "[UNAVAILABLE]" in text:
                raise ImapError(f"login temporarily unavailable: {text}")
            raise LoginRefused(f"login as {self.account.user!r} refused: {text}")
        # The capabilities after login (MOVE, UIDPLUS, IDLE) are what the import may use.
        await self._race(self.protocol.capability(), self.timeout)

    async def select(self, name: str, *, readonly: bool = False) -> Folder:
        encoded = encode_folder(name)
        if readonly:
            response = await self._ok(f"EXAMINE {name}", self.protocol.simple_command("EXAMINE", encoded))
            # aioimaplib runs EXAMINE as a plain command and stays in its AUTH state although
            # the server has selected the folder (read-only): tell it, or it refuses UID FETCH.
            self.protocol.state = aioimaplib.SELECTED
        else:
            response = await self._ok(f"SELECT {name}", self.client.select(encoded))
        text = b"\n".join(bytes(line) for line in response.lines)
        uidvalidity = re.search(rb"\[UIDVALIDITY (\d+)\]", text)
        exists = re.search(rb"(?m)^(\d+) EXISTS", text)
        if uidvalidity is None:
            raise ImapError(f"the server sent no UIDVALIDITY for {name}: cannot import by UID")
        self.protocol.news.clear()
        self.protocol.alarm.clear()
        return Folder(name, int(uidvalidity.group(1)), int(exists.group(1)) if exists else 0)

    async def list_new(self, after_uid: int) -> list[tuple[int, int]]:
        """(UID, size) of each message above `after_uid`, in UID order."""
        response = await self._ok("UID FETCH", self.client.uid("fetch", f"{after_uid + 1}:*", "(UID RFC822.SIZE)"))
        found: dict[int, int] = {}
        for line in response.lines:
            uid = _UID.search(line) if isinstance(line, bytes) and _FETCH_START.match(line) else None
            # `n:*` names the last message even when its UID is below n: keep only what is new.
            if uid and int(uid.group(1)) > after_uid:
                size = _SIZE.search(line)
                found[int(uid.group(1))] = int(size.group(1)) if size else 0
        return sorted(found.items())

    async def fetch(self, uids: Sequence[int], part: str = "BODY.PEEK[]") -> dict[int, tuple[bytes, bytes]]:
        """The literal of `part` per UID, with its response line; PEEK leaves `\\Seen` alone."""
        # No overall timeout: a large message may take long; aioimaplib's own timeout is
        # restarted by every chunk of data, so a stalled server still ends the command.
        response = await self._ok("UID FETCH", self.client.uid("fetch", uid_set(uids), f"(UID FLAGS {part})"),
                                  patient=True)
        found: dict[int, tuple[bytes, bytes]] = {}
        uid: int | None = None
        line_seen, literal = b"", None
        for line in [*response.lines, b"0 FETCH ("]:
            if isinstance(line, bytearray):
                literal = bytes(line)
                continue
            if _FETCH_START.match(line):
                if uid is not None and literal is not None:
                    found[uid] = (literal, line_seen)
                uid, line_seen, literal = None, b"", None
            match = _UID.search(line)
            if match and uid is None:
                uid = int(match.group(1))
            line_seen += line
        return found

    async def folder_exists(self, name: str) -> bool:
        response = await self._ok("LIST", self.client.list('""', encode_folder(name)))
        # Every line but the last (the tagged completion) describes a matching folder.
        return len(response.lines) > 1

    async def ensure_folder(self, name: str) -> None:
        if await self.folder_exists(name):
            return
        await self._ok(f"CREATE {name}", self.client.create(encode_folder(name)))
        # Subscribed, so that people see it in their mail client; not needed by the import.
        await self._race(self.client.subscribe(encode_folder(name)), self.timeout)
        log.info("%s: created folder %s for imported mail", self.account.name, name)

    async def flag_seen(self, uids: Sequence[int]) -> None:
        await self._ok("UID STORE", self.client.uid("store", uid_set(uids), "+FLAGS.SILENT", r"(\Seen)"))

    async def move(self, uids: Sequence[int], target: str) -> None:
        """Move by UID; UIDs no longer in the folder are skipped by the server, so a retry is safe."""
        uids_text, folder = uid_set(uids), encode_folder(target)
        if self.has("MOVE"):
            await self._ok("UID MOVE", self.client.uid("move", uids_text, folder))
            return
        await self._ok("UID COPY", self.client.uid("copy", uids_text, folder))
        await self._ok("UID STORE", self.client.uid("store", uids_text, "+FLAGS.SILENT", r"(\Deleted)"))
        if self.has("UIDPLUS"):
            await self._ok("UID EXPUNGE", self.client.uid("expunge", uids_text))
        else:
            await self._ok("EXPUNGE", self.client.expunge())

    async def wait_for_news(self, seconds: float, stop: asyncio.Event, *, idle: bool) -> bool:
        """Wait until the server announces new mail (True), `seconds` pass or `stop` is set."""
        protocol = self.protocol
        if not idle:
            await _wait_any((stop, protocol.lost, protocol.alarm), seconds)
        elif not protocol.news.is_set():
            await self._idle(seconds, stop)
        if protocol.lost.is_set():
            raise ConnectionLost("the server closed the connection")
        if protocol.alarm.is_set():
            raise ImapError(f"the server said {protocol.alarm_line.decode('utf-8', 'replace')[:200]!r}")
        return protocol.news.is_set()

    async def _idle(self, seconds: float, stop: asyncio.Event) -> None:
        queue = self.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()  # pushes of an earlier IDLE; `news` says what matters
        command = await self._race(self.client.idle_start(), self.timeout)
        await _wait_any((self.protocol.news, stop, self.protocol.lost, self.protocol.alarm), seconds)
        if self.protocol.lost.is_set():
            return
        self.client.idle_done()
        await self._ok("IDLE", command)

    async def close(self) -> None:
        """Log out politely where the connection still stands; never raises."""
        if not self.protocol.lost.is_set() and self.protocol.transport is not None:
            try:
                await asyncio.wait_for(self.client.logout(), 2)
            except Exception:
                pass
        self.abort()

    def abort(self) -> None:
        if self.protocol.transport is not None:
            self.protocol.transport.close()


def _text(response: aioimaplib.Response) -> str:
    lines = [bytes(line) for line in response.lines if not isinstance(line, bytearray)]
    return b" ".join(lines).decode("utf-8", "replace")[:300]


async def _wait_any(events: Iterable[asyncio.Event], timeout: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def encode_folder(name: str) -> str:
    """A folder name as IMAP wants it: modified UTF-7 (RFC 3501 5.1.3), quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return aioimaplib.quoted("".join(out))


def uid_set(uids: Iterable[int]) -> str:
    """`1:3,7` for 1 2 3 7: command lines stay short whatever the chunk."""
    ordered = sorted(set(uids))
    runs: list[list[int]] = []
    for uid in ordered:
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


def read_password(account: ImapAccount) -> str:
    if account.password is not None:
        return account.password
    assert account.password_file is not None
    try:
        # Read at every connection: an admin who fixes the file needs no restart.
        return account.password_file.read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        raise LoginRefused(f"cannot read password_file {account.password_file}: {exc.strerror}") from None


# -- the store: cursor and imported UIDs --------------------------------------------------------


@dataclass(frozen=True)
class FolderKey:
    """One folder as the store knows it: its UIDs mean something only with its UIDVALIDITY."""

    account: str
    folder: str
    uidvalidity: int

    def seen(self) -> Any:
        return and_(IMAPSEEN.c.account == self.account, IMAPSEEN.c.folder == self.folder,
                    IMAPSEEN.c.uidvalidity == self.uidvalidity)


def _state(account: str, folder: str) -> Any:
    return and_(IMAPSTATE.c.account == account, IMAPSTATE.c.folder == folder)


def read_cursor(engine: Engine, account: str, folder: str) -> tuple[int, int] | None:
    """(UIDVALIDITY, last imported UID) as stored, or None before the first import."""
    with engine.connect() as conn:
        row = conn.execute(select(IMAPSTATE.c.uidvalidity, IMAPSTATE.c.last_uid).where(_state(account, folder))).first()
    return (row.uidvalidity, row.last_uid) if row else None


def open_cursor(engine: Engine, key: FolderKey) -> tuple[int, int | None]:
    """The last UID imported under this UIDVALIDITY, and the UIDVALIDITY stored before if it changed."""
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(IMAPSTATE.c.uidvalidity, IMAPSTATE.c.last_uid)
                           .where(_state(key.account, key.folder))).first()
        if row is None:
            conn.execute(insert(IMAPSTATE).values(account=key.account, folder=key.folder,
                                                  uidvalidity=key.uidvalidity, last_uid=0, updated_at=now))
            return 0, None
        if row.uidvalidity == key.uidvalidity:
            return row.last_uid, None
        conn.execute(update(IMAPSTATE).where(_state(key.account, key.folder))
                     .values(uidvalidity=key.uidvalidity, last_uid=0, updated_at=now))
        # The old UIDs name nothing any more: a move still pending under them cannot be done.
        old = FolderKey(key.account, key.folder, row.uidvalidity)
        conn.execute(update(IMAPSEEN).where(old.seen(), IMAPSEEN.c.done.is_(False)).values(done=True))
        return 0, row.uidvalidity


def pending_uids(engine: Engine, key: FolderKey) -> list[int]:
    """UIDs committed to the queue but not yet moved or flagged (the run was interrupted)."""
    with engine.connect() as conn:
        return list(conn.execute(select(IMAPSEEN.c.uid).where(key.seen(), IMAPSEEN.c.done.is_(False))
                                 .order_by(IMAPSEEN.c.uid)).scalars())


def commit_messages(engine: Engine, key: FolderKey, mailbox: str, messages: Sequence[tuple[int, bytes]],
                    cursor: int) -> list[int]:
    """Queue `messages` (UID, raw) for `mailbox`, record their UIDs and move the cursor: one transaction.

    The unique (account, folder, UIDVALIDITY, UID) constraint makes a second import of a UID
    fail the whole transaction, whoever tries it (another daemon on the same database).
    """
    now = utcnow()
    with engine.begin() as conn:
        ids: list[int] = []
        if messages:
            rows = [{"received_at": now, "source": "imap", "mail_from": "", "rcpt_to": mailbox, "raw": raw,
                     "size": len(raw), "state": "queued", "note": "", "message_id": raw_message_id(raw)}
                    for _uid, raw in messages]
            queued = conn.execute(insert(INBOUND).returning(INBOUND.c.id, sort_by_parameter_order=True), rows)
            ids = list(queued.scalars())
            conn.execute(insert(IMAPSEEN), [
                {"account": key.account, "folder": key.folder, "uidvalidity": key.uidvalidity, "uid": uid,
                 "inbound_id": inbound_id, "done": False, "created_at": now}
                for (uid, _raw), inbound_id in zip(messages, ids, strict=True)
            ])
        conn.execute(update(IMAPSTATE)
                     .where(_state(key.account, key.folder), IMAPSTATE.c.uidvalidity == key.uidvalidity,
                            IMAPSTATE.c.last_uid < cursor)
                     .values(last_uid=cursor, updated_at=now))
        return ids


def mark_done(engine: Engine, key: FolderKey, uids: Sequence[int]) -> None:
    with engine.begin() as conn:
        conn.execute(update(IMAPSEEN).where(key.seen(), IMAPSEEN.c.uid.in_(list(uids))).values(done=True))


def count_pending(engine: Engine, account: str, folder: str, uidvalidity: int) -> int:
    key = FolderKey(account, folder, uidvalidity)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(IMAPSEEN)
                                .where(key.seen(), IMAPSEEN.c.done.is_(False))).scalar_one())


# -- the runner ----------------------------------------------------------------------------------


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


@dataclass
class _TestHooks:
    """Fault injection for the tests, off unless its variables are set: a kill -9 right after a
    commit (before the move), or a pause there until the server goes away."""

    crash_after: int | None
    hold_after: int | None
    committed: int = 0

    @classmethod
    def from_env(cls) -> _TestHooks:
        def number(name: str) -> int | None:
            value = os.environ.get(name, "")
            return int(value) if value.isdigit() else None

        return cls(number(CRASH_AFTER_COMMIT_ENV), number(HOLD_AFTER_COMMIT_ENV))

    async def after_commit(self, count: int, session: Session) -> None:
        self.committed += count
        if self.crash_after is not None and self.committed >= self.crash_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.hold_after is not None and self.committed >= self.hold_after:
            self.hold_after = None
            log.warning("%s: test hook: holding after a commit until the connection drops", session.account.name)
            await _wait_any((session.protocol.lost,), 60)


class AccountRunner:
    """Imports one account's folder for as long as the daemon runs; logs its errors, never raises."""

    def __init__(self, account: ImapAccount, engine: Engine, executor: Executor, *,
                 on_commit: Callable[[], None], stop: asyncio.Event) -> None:
        self.account = account
        self.engine = engine
        self.executor = executor
        self.on_commit = on_commit
        self.stop = stop
        self.cursor = 0
        self.trouble = ""  # the last error logged: repeats of it are not logged again
        self.healthy = False
        self.hooks = _TestHooks.from_env()

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
                await _wait_any((self.stop,), LOGIN_RETRY_SECONDS)
                continue
            except (OSError, TimeoutError, ImapError, aioimaplib.AioImapException, SQLAlchemyError) as exc:
                self._report(logging.WARNING, f"{_describe(exc)}; reconnecting")
            except Exception:
                # A bug must not end the account's import: log it whole and start again.
                log.exception("%s: unexpected error; reconnecting", self.name)
                self.trouble = "unexpected error"
            if self.healthy:
                delay = BACKOFF_FIRST
            await _wait_any((self.stop,), delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_MAX)

    def _report(self, level: int, message: str) -> None:
        log.log(level if message != self.trouble else logging.DEBUG, "%s: %s", self.name, message)
        self.trouble = message

    async def _db(self, func: Callable[..., T], *args: Any) -> T:
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
        self.cursor, before = await self._db(open_cursor, self.engine, key)
        if before is not None:
            log.warning("%s: UIDVALIDITY of %s changed from %d to %d (folder recreated or restored): importing its "
                        "%d message(s) again; what was imported before is recognised by Message-ID and body",
                        self.name, folder.name, before, folder.uidvalidity, folder.exists)
        return key

    async def _sync(self, session: Session, key: FolderKey) -> None:
        """Finish interrupted moves, then import everything above the cursor, chunk by chunk."""
        left = await self._db(pending_uids, self.engine, key)
        if left:
            log.info("%s: finishing the %s of %d message(s) imported before an interruption (UIDs %s)",
                     self.name, self.account.after_import, len(left), uid_set(left))
            await self._after_import(session, key, left)
        while not self.stop.is_set():
            session.protocol.news.clear()
            listed = await session.list_new(self.cursor)
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
        ids = await self._db(commit_messages, self.engine, key, mailbox, messages, max(uids))
        self.cursor = max(self.cursor, max(uids))
        if ids:
            self.on_commit()
            log.info("%s: imported %d message(s), UIDs %s, as inbound %s", self.name, len(ids),
                     uid_set(uid for uid, _ in messages), uid_set(ids))
        await self.hooks.after_commit(len(ids), session)
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
        await self._db(mark_done, self.engine, key, uids)


def _describe(exc: BaseException) -> str:
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


# -- `postdesk imap test` ------------------------------------------------------------------------


def find_account(config: Config, name: str) -> ImapAccount | None:
    return next((account for account in config.imap.accounts if account.name == name), None)


async def test_account(config: Config, name: str, echo: Callable[[str], None]) -> bool:
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
    except (OSError, TimeoutError, ImapError, aioimaplib.AioImapException) as exc:
        echo(f"cannot connect: {_describe(exc)}")
        return False
    try:
        offered = ", ".join(f"{name} {'yes' if session.has(name) else 'no'}" for name in ("IDLE", "MOVE", "UIDPLUS"))
        echo(f"logged in; server capabilities that matter here: {offered}")
        folder = await session.select(account.folder, readonly=True)
        echo(f"folder {folder.name}: {folder.exists} message(s), UIDVALIDITY {folder.uidvalidity}")
        cursor = _report_cursor(config, account, folder, echo)
        listed = await session.list_new(cursor) if folder.exists else []
        await _report_import(session, account, listed, echo)
        if account.idle and session.has("IDLE"):
            reidle = min(REIDLE_SECONDS, account.poll_interval)
            echo(f"new mail would be noticed at once by IDLE (re-issued every {reidle:.0f} s)")
        else:
            reason = "idle: false" if not account.idle else "the server offers no IDLE"
            echo(f"new mail would be noticed by polling every {account.poll_interval:g} s ({reason})")
        echo("nothing was changed: the folder was examined read-only")
    except (OSError, TimeoutError, ImapError, aioimaplib.AioImapException) as exc:
        echo(f"failed: {_describe(exc)}")
        return False
    finally:
        await session.close()
    return not problems


def _report_cursor(config: Config, account: ImapAccount, folder: Folder, echo: Callable[[str], None]) -> int:
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


async def _report_import(session: Session, account: ImapAccount, listed: list[tuple[int, int]],
                         echo: Callable[[str], None]) -> None:
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
        message = email.message_from_bytes(raw)
        flags = _FLAGS.search(line)
        seen = ", already seen" if flags and b"\\Seen" in flags.group(1) else ""
        echo(f"  UID {uid}: from {decode_text(message.get('From', '') or '?')}, "
             f"subject {decode_text(message.get('Subject', '') or '(none)')!r} ({item_size} bytes{seen})")
    if len(listed) > len(shown):
        echo(f"  ... and {len(listed) - len(shown)} more")
    if account.after_import == "move":
        exists = await session.folder_exists(account.move_to)
        echo(f"then move them to {account.move_to}" + ("" if exists else " (created at the first import)"))
    else:
        echo("then flag them \\Seen and leave them where they are")
