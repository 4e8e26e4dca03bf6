"""What happened to a ticket that somebody should hear of: events, collected for the notify step.

Actions (`gateway.tickets.actions`), agents' mail (`gateway.agents`), the pipeline's stages and
the scheduler do not write mail themselves: they add events to an `Events` collection, and the
caller hands them to the one notify step (`gateway.notify.Notifier.send`), which turns them into
outbox rows in the same transaction. So nothing below the notify step imports it, and mail
that a rolled-back savepoint caused is never rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.config import Agent, Config
from gateway.db.rows import TicketRow
from gateway.mail.parse import Attachment
from gateway.tickets.notices import Text
from gateway.tickets.store import TicketRef


@dataclass(frozen=True)
class TicketEvent:
    """A row of the notification matrix happened (`event`): the customer and the agent hear of it.

    `human` marks mail an agent wrote (a reply, a question): it is not automatic, so it carries
    no Auto-Submitted header and passes no budget.
    """

    ticket: TicketRow
    event: str
    text: str = ""
    actor: str = ""
    human: bool = False
    files: Sequence[Attachment] = ()
    staff_note: str = ""


@dataclass(frozen=True)
class Confirmation:
    """A new ticket's automatic confirmation to its customer."""

    ticket: TicketRef
    to: str
    customer_name: str
    language: str | None
    mailbox: str
    in_reply_to: str | None
    references: list[str]
    missing: list[str] = field(default_factory=list)
    linked_number: int | None = None
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StaffNotice:
    """A short mail to one agent, manager or lead, about a ticket or (ticket None) about many."""

    ticket: TicketRow | None
    to: str
    event: str
    text: str | Text


@dataclass(frozen=True)
class TellStaff:
    """A notice to the ticket's agent, or to its department's agents while nobody has it."""

    ticket: TicketRow
    event: str
    text: str
    actor: str = ""


@dataclass(frozen=True)
class StaffDigest:
    """Several notices about tickets for one person as one mail (scheduler sweeps)."""

    to: str
    items: Sequence[tuple[TicketRow, str, str | Text]]


@dataclass(frozen=True)
class ThirdPartyQuestion:
    """An agent's question to a third party about the ticket; their answer threads back."""

    ticket: TicketRow
    to: str
    text: str
    actor: str


@dataclass(frozen=True)
class AgentResult:
    """What an agent's mail did to the ticket, or why none of it was done."""

    ticket: TicketRow
    agent: Agent
    ok: bool
    lines: list[str]
    in_reply_to: str | None


@dataclass(frozen=True)
class AdminNotice:
    """A notice to `admin_address` (outside the budgets: one mail per event)."""

    subject: str
    text: str


Event = (TicketEvent | Confirmation | StaffNotice | TellStaff | StaffDigest | ThirdPartyQuestion | AgentResult
         | AdminNotice)


@dataclass
class Events:
    """The configuration actions read, and the events they add (in order) for the notify step."""

    config: Config
    items: list[Event] = field(default_factory=list)

    def add(self, event: Event) -> None:
        self.items.append(event)
