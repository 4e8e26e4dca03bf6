"""The settings of the daemon's machinery: listeners, relay, store, workers, IMAP import, limits.

These sections say how Postdesk runs on a host — where it listens, where it stores, how fast
its workers poll — as opposed to how the help desk works (`gateway.config.desk`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from gateway.config.base import Section, check_listen, parse_hostport

# A listener's address, checked when the settings load rather than when the socket binds.
Listen = Annotated[str, AfterValidator(check_listen)]


class SmtpConfig(Section):
    listen: Listen = "127.0.0.1:2525"
    hostname: str = "postdesk.localhost"
    max_message_size: int = Field(default=25 * 1024 * 1024, gt=0)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    reuse_port: bool = False

    @model_validator(mode="after")
    def _tls_pair(self) -> SmtpConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_hostport(self.listen)


class RelayConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, gt=0, lt=65536)
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    connections: int = Field(default=2, ge=1, le=32)


class DatabaseConfig(Section):
    url: str = "sqlite:///store/postdesk.db"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError(f"expected a sqlite:/// or postgresql+psycopg:// URL, got {value!r}")
        return value


class WebConfig(Section):
    enabled: bool = True
    listen: Listen = "127.0.0.1:8025"
    base_url: str = "http://127.0.0.1:8025"


class MetricsConfig(Section):
    # host:port of /metrics and /healthz; empty: no listener.
    listen: str = "127.0.0.1:9125"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        if value.strip():
            parse_hostport(value)
        return value.strip()

    @property
    def host_port(self) -> tuple[str, int] | None:
        return parse_hostport(self.listen) if self.listen else None


class ProcessorConfig(Section):
    batch_size: int = Field(default=64, ge=1, le=10000)
    # Where batches run: "process" (a child process: the daemon's second core), "thread" (the
    # daemon's own process), or "auto": a process on two or more CPUs, else a thread.
    run_in: Literal["auto", "thread", "process"] = "auto"
    poll_interval: float = Field(default=1.0, gt=0)
    lease_seconds: int = Field(default=300, ge=10)
    # A reply whose parent is still queued (another daemon has it) waits this long, at most
    # max_defers times, before it opens a ticket of its own.
    defer_seconds: float = Field(default=1.0, gt=0)
    max_defers: int = Field(default=20, ge=0)
    # Raw bytes claimed per batch at most (at least one message is always claimed).
    batch_bytes: int = Field(default=32 * 1024 * 1024, ge=1)


class OutboxConfig(Section):
    batch_size: int = Field(default=64, ge=1, le=10000)
    poll_interval: float = Field(default=1.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    backoff_initial: float = Field(default=30.0, gt=0)
    backoff_max: float = Field(default=3600.0, gt=0)
    lease_seconds: int = Field(default=120, ge=10)
    # Seconds staff mail (notices, digests, admin reports) may wait behind customers' mail once
    # it is due; after that it takes its turn among theirs.
    staff_wait: float = Field(default=60.0, ge=0)
    from_name: str = "Postdesk"


class AttachmentsConfig(Section):
    max_size: int = Field(default=10 * 1024 * 1024, gt=0)


class ImapAccount(Section):
    """One IMAP mailbox whose mail Postdesk imports as if it had been sent to `mailbox`."""

    name: str
    mailbox: str
    host: str
    port: int = Field(default=993, gt=0, lt=65536)
    tls: Literal["implicit", "starttls", "plain"] = "implicit"
    allow_plain: bool = False
    user: str
    password: str | None = None
    password_file: Path | None = None
    folder: str = "INBOX"
    after_import: Literal["move", "flag"] = "move"
    move_to: str = "Postdesk/Imported"
    idle: bool = True
    poll_interval: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ImapAccount:
        if self.tls == "plain" and not self.allow_plain:
            raise ValueError(
                f"account {self.name}: tls: plain sends the password in clear; set allow_plain: true to allow it"
            )
        if self.password is None and self.password_file is None:
            raise ValueError(f"account {self.name}: set password or password_file")
        return self


class ImapConfig(Section):
    accounts: tuple[ImapAccount, ...] = ()


class LimitsConfig(Section):
    """Caps on the work one message may cost (`gateway.mail.limits`); over a cap, it is cut."""

    max_parts: int = Field(default=500, ge=1)
    max_containers: int = Field(default=50, ge=1)
    max_lines: int = Field(default=400_000, ge=100)
    text_bytes: int = Field(default=1024 * 1024, ge=1024)
    html_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    html_depth: int = Field(default=100, ge=4)
    max_dkim_signatures: int = Field(default=5, ge=1)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
