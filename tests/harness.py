"""Real parts for tests: an SMTP sink that records what we send, daemons run as real processes,
and fresh databases on SQLite and on the PostgreSQL server of this machine.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import Engine, create_engine, text

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
PG_ADMIN_URL = os.environ.get("POSTDESK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


# Ports free_port has handed out in this process.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, and none this process handed out before: the kernel may
    give a port it just gave again, and a daemon given the same one for its web page and its
    metrics starts without one of them (the test then asks the web page for /metrics: 404)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    arrived_at: float = field(default_factory=time.time)


class Sink:
    """A real SMTP server standing in for the relay; records every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self.port = free_port()
        self.refuse: Callable[[list[str]], str | None] = lambda rcpts: None
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = self.refuse(list(envelope.rcpt_tos))
        if answer:
            return answer
        raw = bytes(envelope.content)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._cond:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, message))  # type: ignore[arg-type]
            self._cond.notify_all()
        return "250 2.0.0 OK"

    def start(self) -> Sink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def to(self, address: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if address in m.rcpt_tos]

    def wait_matching(self, address: str, wanted: Callable[[Received], bool], timeout: float = 20) -> Received:
        """Block until a message to `address` that is `wanted` arrived, whatever else came first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if address in m.rcpt_tos and wanted(m)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [str(m.message["Subject"]) for m in self.messages if address in m.rcpt_tos]
                    raise AssertionError(f"no wanted mail to {address} among {got}")
                self._cond.wait(left)

    def wait_for(self, address: str, count: int = 1, timeout: float = 20) -> list[Received]:
        """Block until `count` messages to `address` arrived (no polling sleeps: a condition)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if address in m.rcpt_tos]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} mail(s) to {address}, got {len(found)}")
                self._cond.wait(left)

    def wait_total(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count and time.monotonic() < deadline:
                self._cond.wait(max(deadline - time.monotonic(), 0.01))
            return len(self.messages)


class Database:
    """A fresh, empty database of one kind, dropped again afterwards."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.name = f"postdesk_test_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp / (self.name + '.db')}"
        else:
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            admin.dispose()
            self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"
        self.engine: Engine = create_engine(self.url)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def drop(self) -> None:
        self.engine.dispose()
        if self.kind == "postgresql":
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()


def pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@dataclass
class Daemon:
    """`postdesk serve` as a real process, configured through POSTDESK_* variables."""

    db: Database
    sink: Sink
    log_path: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}
        env.update({
            "POSTDESK_SMTP__LISTEN": f"127.0.0.1:{self.port}",
            "POSTDESK_RELAY__PORT": str(self.sink.port),
            "POSTDESK_RELAY__HOST": "127.0.0.1",
            "POSTDESK_DATABASE__URL": self.db.url,
            "POSTDESK_PROCESSOR__POLL_INTERVAL": "0.2",
            "POSTDESK_OUTBOX__POLL_INTERVAL": "0.2",
            "POSTDESK_OUTBOX__BACKOFF_INITIAL": "0.5",
            "POSTDESK_OUTBOX__BACKOFF_MAX": "2",
            "POSTDESK_SMTP__MAX_MESSAGE_SIZE": "300000",
            "POSTDESK_INSTANCE": f"test-{self.port}",
            # Daemons sharing a database share a secret; a test of two installations sets two.
            "POSTDESK_SECRET": "test-secret-shared-by-one-installation",
            # Scheduled duties run where a test asks for them (they mail digests on their own).
            "POSTDESK_SCHEDULER__ENABLED": "false",
            "POSTDESK_WEB__LISTEN": f"127.0.0.1:{self.web_port}",
            "POSTDESK_WEB__BASE_URL": f"http://127.0.0.1:{self.web_port}",
        })
        env.update(self.env_extra)
        return env

    def start(self, timeout: float = 30) -> Daemon:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve"], cwd=REPO, env=self.env(), stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"daemon did not listen within {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def cli(self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args], cwd=REPO, env={**self.env(), **(env or {})},
            input=stdin, capture_output=True, timeout=60,
        )

    @contextmanager
    def smtp(self) -> Iterator[smtplib.SMTP]:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        try:
            yield client
        finally:
            try:
                client.quit()
            except smtplib.SMTPException:
                client.close()

    def send(self, raw: bytes, *, sender: str, to: list[str] | None = None) -> None:
        with self.smtp() as client:
            client.sendmail(sender, to or ["support@telenta.example"], crlf(raw))


def make_mail(
    *, sender: str, subject: str, body: str = "Hello, the alarm keeps ringing.\n", to: str = "support@telenta.example",
    message_id: str | None = None, headers: dict[str, str] | None = None, name: str = "",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@customer.example>"
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def crlf(raw: bytes) -> bytes:
    """Lines end in CRLF on the wire: an MTA converts, smtplib does not for bytes."""
    return re.sub(rb"\r\n|\n|\r", b"\r\n", raw)


def unique_address(prefix: str = "customer") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@kund.example"


def wait_until(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll the database for a state the daemon reaches asynchronously (nothing to await there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
