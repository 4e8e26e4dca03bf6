"""Settings: `config/postdesk.yaml` plus `POSTDESK_*` environment overrides, validated.

Every key in the YAML file can be overridden by an environment variable named
`POSTDESK_<SECTION>__<KEY>` (double underscore for each level of nesting, lists comma-separated),
e.g. `POSTDESK_SMTP__LISTEN=0.0.0.0:25` or `POSTDESK_MAILBOXES=support@a.example,order@a.example`.
A bad value stops start-up with one line that names the key and, where it came from the
environment, the variable.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from functools import cache
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from gateway.i18n.formats import check_zone

ENV_PREFIX = "POSTDESK_"
DEFAULT_CONFIG = Path("config/postdesk.yaml")
DEFAULT_MAILBOX_NAMES = ("support", "order", "service", "onlinesupport")


class ConfigError(Exception):
    """A setting is missing, malformed or out of range; the message is one line for the admin."""


def parse_hostport(value: str, *, default_port: int | None = None) -> tuple[str, int]:
    """Split `host:port` (or `[v6]:port`) into its parts, raising ValueError with a readable text."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"expected host:port, got {value!r}")
        host, port = text, str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port with a port from 1 to 65535, got {value!r}")
    return host, int(port)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpConfig(_Section):
    listen: str = "127.0.0.1:2525"
    hostname: str = "postdesk.localhost"
    max_message_size: int = Field(default=25 * 1024 * 1024, gt=0)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    reuse_port: bool = False

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_hostport(value)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> SmtpConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_hostport(self.listen)


class RelayConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, gt=0, lt=65536)
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    connections: int = Field(default=2, ge=1, le=32)


class DatabaseConfig(_Section):
    url: str = "sqlite:///store/postdesk.db"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError(f"expected a sqlite:/// or postgresql+psycopg:// URL, got {value!r}")
        return value


class WebConfig(_Section):
    enabled: bool = True
    listen: str = "127.0.0.1:8025"
    base_url: str = "http://127.0.0.1:8025"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_hostport(value)
        return value


class MetricsConfig(_Section):
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


class TicketsConfig(_Section):
    tag_format: str = "[#{number}]"
    first_number: int = Field(default=100000, ge=1)
    language: Literal["en", "sv", "ro"] = "en"
    # Time zone of pages and mail when neither the person nor their organisation has one.
    timezone: str = "Europe/Stockholm"
    # Guess a new customer's language from their own text when nothing else names one.
    detect_language: bool = True

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("tag_format")
    @classmethod
    def _check_tag(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError("must contain {number}")
        return value


class ProcessorConfig(_Section):
    batch_size: int = Field(default=64, ge=1, le=10000)
    poll_interval: float = Field(default=1.0, gt=0)
    lease_seconds: int = Field(default=300, ge=10)
    # A reply whose parent is still queued (another daemon has it) waits this long, at most
    # max_defers times, before it opens a ticket of its own.
    defer_seconds: float = Field(default=1.0, gt=0)
    max_defers: int = Field(default=20, ge=0)
    # Raw bytes claimed per batch at most (at least one message is always claimed).
    batch_bytes: int = Field(default=32 * 1024 * 1024, ge=1)


class OutboxConfig(_Section):
    batch_size: int = Field(default=64, ge=1, le=10000)
    poll_interval: float = Field(default=1.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    backoff_initial: float = Field(default=30.0, gt=0)
    backoff_max: float = Field(default=3600.0, gt=0)
    lease_seconds: int = Field(default=120, ge=10)
    from_name: str = "Postdesk"


class RulesConfig(_Section):
    dir: Path = Path("rules")
    directory: Path = Path("config/directory.yaml")
    watch_interval: float = Field(default=2.0, ge=0)
    # Department of a ticket that no rule, organisation or topic routes; empty: the department
    # the directory's support_manager manages or is a member of.
    triage_department: str = ""


class AttachmentsConfig(_Section):
    max_size: int = Field(default=10 * 1024 * 1024, gt=0)


class Bucket(_Section):
    """A token bucket: `capacity` mails at once, refilled at `per_hour`."""

    capacity: float = Field(gt=0)
    per_hour: float = Field(ge=0)


class GuardConfig(_Section):
    per_recipient: Bucket = Bucket(capacity=5, per_hour=5)
    per_ticket: Bucket = Bucket(capacity=10, per_hour=10)
    suppression_days: int = Field(default=30, ge=1)


class SlaPlanConfig(_Section):
    """Targets in minutes of business time; null means no such target."""

    assign: int | None = Field(default=30, ge=1)
    first_response: int | None = Field(default=240, ge=1)
    resolution: int | None = Field(default=2880, ge=1)
    warn_before: int = Field(default=10, ge=0)
    calendar: str = "always"


class SlaConfig(_Section):
    default_plan: str = "standard"
    plans: dict[str, SlaPlanConfig] = {"standard": SlaPlanConfig()}
    # name -> {timezone, hours: {"mon-fri": "08:00-17:00"}, holidays: [dates]}; "always" is built in.
    calendars: dict[str, dict[str, Any]] = {}
    # Minutes after a breach before the support lead hears of it (the manager hears at once).
    escalate_to_lead_after: int = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _known(self) -> SlaConfig:
        if self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not among the plans ({', '.join(self.plans)})")
        for name, plan in self.plans.items():
            if plan.calendar != "always" and plan.calendar not in self.calendars:
                raise ValueError(f"plans.{name}.calendar: no calendar named {plan.calendar!r}")
        return self


Audience = Literal["always", "optout", "never"]


class NotifyRule(_Section):
    """Who hears of one event: the customer (always / unless opted out / never), the assignee."""

    customer: Audience = "optout"
    assignee: bool = False


def _default_matrix() -> dict[str, NotifyRule]:
    # Defaults from the seeds: the confirmation and what needs the customer's action or closes
    # the request always go out; plain status changes may be opted out of.
    return {
        "created": NotifyRule(customer="always"),
        "status_changed": NotifyRule(customer="optout"),
        "agent_reply": NotifyRule(customer="always"),
        "info_requested": NotifyRule(customer="always"),
        "waiting_third_party": NotifyRule(customer="optout"),
        "resolved": NotifyRule(customer="always", assignee=False),
        "closed": NotifyRule(customer="optout"),
        "reopened": NotifyRule(customer="optout", assignee=True),
        "customer_replied": NotifyRule(customer="never", assignee=True),
    }


class SchedulerConfig(_Section):
    enabled: bool = True
    sweep_seconds: int = Field(default=60, ge=1)
    # Tickets without activity for this many hours are reported to their department manager.
    stale_hours: int = Field(default=48, ge=1)
    digest_time: str = "07:00"
    backup_time: str = "02:30"
    backup_keep_days: int = Field(default=14, ge=1)
    timezone: str = "Europe/Stockholm"


class LifecycleConfig(_Section):
    # A customer reply to a resolved ticket within this many days reopens it; later, or to a
    # closed ticket, it opens a new ticket linked to the old one.
    reopen_days: int = Field(default=14, ge=0)
    auto_close_days: int = Field(default=7, ge=1)


class ImapAccount(_Section):
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
            raise ValueError(f"account {self.name}: tls: plain sends the password in clear; set allow_plain: true to allow it")
        if self.password is None and self.password_file is None:
            raise ValueError(f"account {self.name}: set password or password_file")
        return self


class ImapConfig(_Section):
    accounts: tuple[ImapAccount, ...] = ()


class Agent(_Section):
    """A person who works tickets: by mail with proof (token or DKIM), and on the web view."""

    name: str
    address: str
    departments: tuple[str, ...] = ()
    role: Literal["agent", "manager", "lead"] = "agent"
    language: Literal["en", "sv", "ro"] | None = None
    # IANA time zone of the times in their mail and pages; null: tickets.timezone.
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        return check_zone(value) if value else None


class AgentMailConfig(_Section):
    """How agents work tickets by mail: reply tokens and the proof that a mail is an agent's."""

    # Days a signed reply address stays valid after the mail that carried it was sent.
    token_days: int = Field(default=90, ge=1, le=3650)
    # Accept a passing DKIM signature aligned with the agent's domain as proof.
    dkim: bool = True
    # A YAML file of TXT records ("sel._domainkey.example.org": "v=DKIM1; p=...") consulted
    # before DNS; for tests and for split-horizon setups. Null: DNS only.
    dkim_dns_override: Path | None = None
    # authserv-id of our own MTA, whose topmost Authentication-Results header we trust
    # (dkim=pass or dmarc=pass aligned with the agent's domain). Empty: trust none.
    trusted_authserv_id: str = ""
    # IP addresses or CIDR networks of our own MTAs: only mail whose SMTP client is one of them
    # has its Authentication-Results read. Empty: none is read.
    mta_hosts: tuple[str, ...] = ()
    # Agents' domains that sign their mail without publishing DMARC: a reply token from them
    # counts only with a passing aligned DKIM signature, as for domains that publish DMARC.
    signed_domains: tuple[str, ...] = ()
    # Tell admin_address when mail from an agent's address arrives without proof.
    report_forgeries: bool = True
    # Messages of the ticket's history quoted in mail to agents (newest first).
    history_messages: int = Field(default=3, ge=0, le=20)

    @field_validator("mta_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        for host in value or ():
            try:
                ipaddress.ip_network(str(host).strip(), strict=False)
            except ValueError:
                raise ValueError(f"{host!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.4.0/24)") from None
        return tuple(str(host).strip() for host in value or ())


class LimitsConfig(_Section):
    """Caps on the work one message may cost (`gateway.mail.limits`); over a cap, it is cut."""

    max_parts: int = Field(default=500, ge=1)
    max_containers: int = Field(default=50, ge=1)
    max_lines: int = Field(default=400_000, ge=100)
    text_bytes: int = Field(default=1024 * 1024, ge=1024)
    html_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    html_depth: int = Field(default=100, ge=4)
    max_dkim_signatures: int = Field(default=5, ge=1)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(BaseModel):
    """The whole settings tree; section classes above carry the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str = "telenta.example"
    instance: str = ""
    secret: str = ""
    admin_address: str = ""
    message_ids: str = ""
    mailboxes: tuple[str, ...] = ()
    smtp: SmtpConfig = SmtpConfig()
    relay: RelayConfig = RelayConfig()
    database: DatabaseConfig = DatabaseConfig()
    web: WebConfig = WebConfig()
    metrics: MetricsConfig = MetricsConfig()
    tickets: TicketsConfig = TicketsConfig()
    processor: ProcessorConfig = ProcessorConfig()
    outbox: OutboxConfig = OutboxConfig()
    logging: LoggingConfig = LoggingConfig()
    imap: ImapConfig = ImapConfig()
    rules: RulesConfig = RulesConfig()
    attachments: AttachmentsConfig = AttachmentsConfig()
    guard: GuardConfig = GuardConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    sla: SlaConfig = SlaConfig()
    notifications: dict[str, NotifyRule] = Field(default_factory=_default_matrix)
    scheduler: SchedulerConfig = SchedulerConfig()
    agents: tuple[Agent, ...] = ()
    agent_mail: AgentMailConfig = AgentMailConfig()
    limits: LimitsConfig = LimitsConfig()
    templates_dir: Path = Path("templates")
    store_dir: Path = Path("store")
    # The staff from the directory in force, merged with `agents` (gateway.routing.staff).
    _staff: tuple[Agent, ...] | None = PrivateAttr(default=None)

    @field_validator("mailboxes", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _default_mailboxes(self) -> Config:
        if not self.mailboxes:
            boxes = tuple(f"{name}@{self.domain}" for name in DEFAULT_MAILBOX_NAMES)
            object.__setattr__(self, "mailboxes", boxes)
        normalised = tuple(box.strip().lower() for box in self.mailboxes)
        for box in normalised:
            if box.count("@") != 1 or box.startswith("@") or box.endswith("@"):
                raise ValueError(f"mailboxes: {box!r} is not an address")
        object.__setattr__(self, "mailboxes", normalised)
        return self

    @property
    def message_id_domain(self) -> str:
        """The right-hand side of our Message-IDs, which no mail client uses.

        Agents' own clients make Message-IDs at the company domain; ours must differ, or an
        agent's reply would look like our own mail coming back.
        """
        return self.message_ids or f"postdesk.{self.domain}"

    def loop_token(self) -> str:
        """The value of our loop header: derived from the secret, so it cannot be guessed."""
        return hmac.new(self.secret_key(), b"postdesk-loop", hashlib.sha256).hexdigest()[:20]

    def secret_key(self) -> bytes:
        """The key for signed tokens and links: `secret`, or one generated once under `store_dir`."""
        if self.secret:
            return self.secret.encode()
        return _stored_secret(Path(self.store_dir).resolve())

    @field_validator("notifications", mode="after")
    @classmethod
    def _complete_matrix(cls, value: dict[str, NotifyRule]) -> dict[str, NotifyRule]:
        unknown = set(value) - set(_default_matrix())
        if unknown:
            raise ValueError(f"unknown event(s) {', '.join(sorted(unknown))}; events are {', '.join(_default_matrix())}")
        return {**_default_matrix(), **value}

    @property
    def staff(self) -> tuple[Agent, ...]:
        """Everyone who works tickets: the directory's people once it is loaded, else `agents`."""
        return self.agents if self._staff is None else self._staff

    def use_staff(self, people: tuple[Agent, ...]) -> None:
        """Called whenever the directory (re)loads; the settings themselves stay frozen."""
        self._staff = people

    def agent(self, address: str) -> Agent | None:
        address = address.lower()
        return next((a for a in self.staff if a.address.lower() == address), None)

    def agents_of(self, department: str | None) -> list[Agent]:
        """The agents (and managers) who work `department`'s tickets."""
        if not department:
            return []
        wanted = department.casefold()
        return [a for a in self.staff if any(d.casefold() == wanted for d in a.departments)]


@cache
def _stored_secret(store: Path) -> bytes:
    """The generated secret under `store`, made on first use; read once per process."""
    path = store / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written once, readable by the daemon's user only; every instance must share it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it a moment ago
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _env_overrides(environ: Mapping[str, str]) -> dict[str, tuple[list[str], str, str]]:
    """Map each POSTDESK_* variable to its key path, value and name."""
    found: dict[str, tuple[list[str], str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "POSTDESK_CONFIG":
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        found[".".join(path)] = (path, value, name)
    return found


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _list_fields() -> set[str]:
    # Lists are comma-separated in the environment; these are the keys whose type is a list.
    return {"mailboxes", "agent_mail.mta_hosts"}


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file (if present) and the environment; raise ConfigError on any bad value."""
    environ = os.environ if environ is None else environ
    path = path or Path(environ.get("POSTDESK_CONFIG", DEFAULT_CONFIG))
    tree: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
        tree = loaded or {}
    elif path != DEFAULT_CONFIG:
        raise ConfigError(f"{path}: config file not found")
    overrides = _env_overrides(environ)
    for dotted, (keys, value, _name) in overrides.items():
        _set_path(tree, keys, value.split(",") if dotted in _list_fields() else value)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        error = exc.errors()[0]
        dotted = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        origin = overrides.get(dotted)
        source = f" (from {origin[2]})" if origin else f" (in {path})"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        raise ConfigError(f"config error: {dotted or 'top level'}{source}: {message}") from None
