"""The IMAP wire: aioimaplib plus what it lacks, and how names and UID sets are written on it.

This module owns the connection-level pieces below a `Session`: the errors the runner tells
apart (a refused login is retried rarely, anything else reconnects), a protocol that reports three
events aioimaplib does not offer (new mail, connection lost, and an alarm when the folder changes
under us), and the encodings IMAP wants for folder names (modified UTF-7) and UID sets.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import Iterable

import aioimaplib

_EXISTS = re.compile(rb"\* \d+ EXISTS")
# Untagged NO or BYE, or a new UIDVALIDITY, outside any command of ours: the folder changed under
# us (Dovecot answers a deletion of the selected folder with "* NO Internal error" and goes on).
_ALARM = re.compile(rb"\* (NO|BYE)\b|\* OK \[UIDVALIDITY ")


class ImapError(Exception):
    """The server refused a command or the connection failed; the runner reconnects."""


class ConnectionLost(ImapError):
    """The server closed the connection (restart, idle timeout, network)."""


class LoginRefused(ImapError):
    """The server will not let us in with these settings; retried only every few minutes."""


class Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol with the events it does not offer: new mail, connection lost, alarm."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: object = None) -> None:
        super().__init__(loop, conn_lost_cb)
        self.news = asyncio.Event()
        self.lost = asyncio.Event()
        self.alarm = asyncio.Event()
        self.alarm_line = b""

    def _untagged_response(self, line: bytes) -> object:
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


class Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """aioimaplib's client, connected through our `Protocol`."""

    protocol: Protocol

    def create_client(self, host: str, port: int, loop: asyncio.AbstractEventLoop, conn_lost_cb: object = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:
        super().create_client(host, port, loop, conn_lost_cb, ssl_context)
        # The connection task calls `lambda: self.protocol` only once connected, so the
        # protocol swapped in here is the one that gets the transport.
        self.protocol = Protocol(self.protocol.loop, conn_lost_cb)


def response_text(response: aioimaplib.Response) -> str:
    """The server's words in a response, short enough for a log line."""
    lines = [bytes(line) for line in response.lines if not isinstance(line, bytearray)]
    return str(b" ".join(lines).decode("utf-8", "replace")[:300])


async def wait_any(events: Iterable[asyncio.Event], timeout: float) -> None:
    """Return when one of `events` is set or `timeout` passes."""
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
    return str(aioimaplib.quoted("".join(out)))


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
