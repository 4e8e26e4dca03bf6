"""The whole settings tree (`Config`), and the answers it gives from its own values.

Each section's keys and defaults live in `gateway.config.service` (how the daemon runs) and
`gateway.config.desk` (how the help desk works); this module puts them together at the top
level with the few settings that are not in a section (domain, mailboxes, secret), and owns
what is derived from them: our mailboxes' addresses, the Message-ID domain, the signing key,
and who the staff are once the directory has loaded.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from gateway.config.desk import (
    Agent,
    AgentMailConfig,
    GuardConfig,
    LifecycleConfig,
    NotifyRule,
    RulesConfig,
    SchedulerConfig,
    SlaConfig,
    TicketsConfig,
    complete_matrix,
    default_matrix,
    split_list,
)
from gateway.config.secret import secret_in
from gateway.config.service import (
    AttachmentsConfig,
    DatabaseConfig,
    ImapConfig,
    LimitsConfig,
    LoggingConfig,
    MetricsConfig,
    OutboxConfig,
    ProcessorConfig,
    RelayConfig,
    SmtpConfig,
    WebConfig,
)

DEFAULT_MAILBOX_NAMES = ("support", "order", "service", "onlinesupport")


@dataclass(frozen=True)
class StaffIndex:
    """The staff in force, and who is who among them: by lower-cased address (the first entry
    of an address listed twice) and by case-folded department (each person once)."""

    people: tuple[Agent, ...]
    by_address: dict[str, Agent]
    by_department: dict[str, list[Agent]]

    @classmethod
    def of(cls, staff: tuple[Agent, ...]) -> StaffIndex:
        by_address: dict[str, Agent] = {}
        by_department: dict[str, list[Agent]] = {}
        for person in staff:
            by_address.setdefault(person.address.lower(), person)
            for department in dict.fromkeys(d.casefold() for d in person.departments):
                by_department.setdefault(department, []).append(person)
        return cls(staff, by_address, by_department)


class Config(BaseModel):
    """The whole settings tree; the section classes carry the defaults."""

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
    notifications: dict[str, NotifyRule] = Field(default_factory=default_matrix)
    scheduler: SchedulerConfig = SchedulerConfig()
    agents: tuple[Agent, ...] = ()
    agent_mail: AgentMailConfig = AgentMailConfig()
    limits: LimitsConfig = LimitsConfig()
    templates_dir: Path = Path("templates")
    store_dir: Path = Path("store")
    # The staff from the directory in force, merged with `agents` (gateway.routing.staff), with
    # its index by address and department: every notice looks its reader up, several times a
    # message. None until the directory loads: then the staff are `agents`.
    _staff: StaffIndex | None = PrivateAttr(default=None)

    @field_validator("mailboxes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)

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

    @field_validator("notifications", mode="after")
    @classmethod
    def _complete_matrix(cls, value: dict[str, NotifyRule]) -> dict[str, NotifyRule]:
        return complete_matrix(value)

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
        return secret_in(self.store_dir)

    @property
    def staff(self) -> tuple[Agent, ...]:
        """Everyone who works tickets: the directory's people once it is loaded, else `agents`."""
        return self._indexed().people

    def use_staff(self, people: tuple[Agent, ...]) -> None:
        """Called whenever the directory (re)loads; the settings themselves stay frozen."""
        self._staff = StaffIndex.of(people)

    def _indexed(self) -> StaffIndex:
        # Read from pydantic's dict of private attributes: `self._staff` goes through
        # BaseModel.__getattr__, about 4.5 us a read, and this is read for every notice.
        index: StaffIndex | None = self.__pydantic_private__["_staff"]  # type: ignore[index]
        if index is None:  # no directory loaded: the configured agents, which never change
            index = self._staff = StaffIndex.of(self.agents)
        return index

    def agent(self, address: str) -> Agent | None:
        return self._indexed().by_address.get(address.lower())

    def agents_of(self, department: str | None) -> list[Agent]:
        """The agents (and managers) who work `department`'s tickets."""
        if not department:
            return []
        return list(self._indexed().by_department.get(department.casefold(), ()))
