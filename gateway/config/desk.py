"""The settings of the help desk itself: tickets, routing files, staff, SLAs, who hears of what.

These sections say how support works — ticket numbers and language, the rules and directory
files, the people (`agents`, `agent_mail`), service levels and their calendars, the
notification matrix, the scheduler's sweeps — as opposed to how the daemon runs on its host
(`gateway.config.service`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from gateway.config.base import Section
from gateway.i18n.zones import check_zone
from gateway.values import Language

Zone = Annotated[str, AfterValidator(check_zone)]


class TicketsConfig(Section):
    tag_format: str = "[#{number}]"
    first_number: int = Field(default=100000, ge=1)
    language: Language = "en"
    # Time zone of pages and mail when neither the person nor their organisation has one.
    timezone: Zone = "Europe/Stockholm"
    # Guess a new customer's language from their own text when nothing else names one.
    detect_language: bool = True

    @field_validator("tag_format")
    @classmethod
    def _check_tag(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError("must contain {number}")
        return value


class RulesConfig(Section):
    dir: Path = Path("rules")
    directory: Path = Path("config/directory.yaml")
    watch_interval: float = Field(default=2.0, ge=0)
    # Department of a ticket that no rule, organisation or topic routes; empty: the department
    # the directory's support_manager manages or is a member of.
    triage_department: str = ""


class Bucket(Section):
    """A token bucket: `capacity` mails at once, refilled at `per_hour`."""

    capacity: float = Field(gt=0)
    per_hour: float = Field(ge=0)


class GuardConfig(Section):
    per_recipient: Bucket = Bucket(capacity=5, per_hour=5)
    per_ticket: Bucket = Bucket(capacity=10, per_hour=10)
    suppression_days: int = Field(default=30, ge=1)


class SlaPlanConfig(Section):
    """Targets in minutes of business time; null means no such target."""

    assign: int | None = Field(default=30, ge=1)
    first_response: int | None = Field(default=240, ge=1)
    resolution: int | None = Field(default=2880, ge=1)
    warn_before: int = Field(default=10, ge=0)
    calendar: str = "always"


class SlaConfig(Section):
    default_plan: str = "standard"
    plans: dict[str, SlaPlanConfig] = {"standard": SlaPlanConfig()}
    # name -> {timezone, hours: {"mon-fri": "08:00-17:00"}, holidays: [dates]}; "always" is built in.
    # Each calendar is read and checked by `gateway.tickets.calendar`, which knows its keys.
    calendars: dict[str, dict[str, object]] = {}
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


class NotifyRule(Section):
    """Who hears of one event: the customer (always / unless opted out / never), the assignee."""

    customer: Audience = "optout"
    assignee: bool = False


def default_matrix() -> dict[str, NotifyRule]:
    """Who hears of each event unless `notifications:` says otherwise; its keys are the events."""
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


def complete_matrix(given: dict[str, NotifyRule]) -> dict[str, NotifyRule]:
    """The defaults overlaid with `given`; a ValueError names an event that does not exist."""
    defaults = default_matrix()
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown event(s) {', '.join(sorted(unknown))}; events are {', '.join(defaults)}")
    return {**defaults, **given}


class SchedulerConfig(Section):
    enabled: bool = True
    sweep_seconds: int = Field(default=60, ge=1)
    # Tickets without activity for this many hours are reported to their department manager.
    stale_hours: int = Field(default=48, ge=1)
    digest_time: str = "07:00"
    backup_time: str = "02:30"
    backup_keep_days: int = Field(default=14, ge=1)
    timezone: str = "Europe/Stockholm"


class LifecycleConfig(Section):
    # A customer reply to a resolved ticket within this many days reopens it; later, or to a
    # closed ticket, it opens a new ticket linked to the old one.
    reopen_days: int = Field(default=14, ge=0)
    auto_close_days: int = Field(default=7, ge=1)


# An agent works tickets; a manager answers for a department's; the lead for all of them.
Role = Literal["agent", "manager", "lead"]


class Agent(Section):
    """A person who works tickets: by mail with proof (token or DKIM), and on the web view."""

    name: str
    address: str
    departments: tuple[str, ...] = ()
    role: Role = "agent"
    language: Language | None = None
    # IANA time zone of the times in their mail and pages; null: tickets.timezone.
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        return check_zone(value) if value else None


def split_list(value: object) -> object:
    """A comma-separated text as a list of its non-empty parts; anything else as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class AgentMailConfig(Section):
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
    def _hosts(cls, value: object) -> object:
        value = split_list(value)
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            return value  # pydantic then says what type it expected
        for host in value:
            try:
                ipaddress.ip_network(str(host).strip(), strict=False)
            except ValueError:
                raise ValueError(f"{host!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.4.0/24)") from None
        return tuple(str(host).strip() for host in value)
