"""One logged-in IMAP connection and the commands the import needs, each bounded in time.

A `Session` connects (implicit TLS, STARTTLS, or plain where the admin allowed it), logs in and
offers what the runner and `postdesk imap test` do with a folder: select or examine it, list the
UIDs above a cursor, fetch bodies without touching `\\Seen`, move or flag, and wait for news by
IDLE or a plain pause. Every command gives up when the connection drops; all but fetching a body
also give up after the account's `timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aioimaplib

from gateway.config import ImapAccount
from gateway.intake.imap.wire import (
    Client,
    ConnectionLost,
    ImapError,
    LoginRefused,
    Protocol,
    encode_folder,
    response_text,
    uid_set,
    wait_any,
)

log = logging.getLogger("gateway.imap")
T = TypeVar("T")

_FETCH_START = re.compile(rb"\d+ FETCH \(")
_UID = re.compile(rb"[( ]UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class Folder:
    """A selected folder: its name, the UIDVALIDITY its UIDs belong to, how many messages it holds."""

    name: str
    uidvalidity: int
    exists: int


class Session:
    """One logged-in connection to an account's server, with the commands the import needs."""

    def __init__(self, account: ImapAccount, client: Client) -> None:
        self.account = account
        self.client = client
        self.timeout = account.timeout

    @property
    def protocol(self) -> Protocol:
        return self.client.protocol

    @classmethod
    async def open(cls, account: ImapAccount) -> Session:
        context = ssl.create_default_context() if account.tls != "plain" else None
        client = Client(account.host, account.port, timeout=account.timeout,
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
        return bool(self.client.has_capability(capability))

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
            raise ImapError(f"{what} failed: {response.result} {response_text(response)}")
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
            text = response_text(response)
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
            await wait_any((stop, protocol.lost, protocol.alarm), seconds)
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
        await wait_any((self.protocol.news, stop, self.protocol.lost, self.protocol.alarm), seconds)
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


def read_password(account: ImapAccount) -> str:
    if account.password is not None:
        return account.password
    assert account.password_file is not None
    try:
        # Read at every connection: an admin who fixes the file needs no restart.
        return account.password_file.read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        raise LoginRefused(f"cannot read password_file {account.password_file}: {exc.strerror}") from None
