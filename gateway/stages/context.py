"""The `Context`: one inbound item on its way through the stages, and the signals stages raise.

Stages annotate the context; everything they decide is kept in `Context.trace`, which is stored
with the message and printed by `postdesk route`. A stage that has settled the item (a
duplicate, a staff reply, a dropped mail) sets `settled`; the runner then skips the stages
after it, except those that run for every item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.agents.behalf import OnBehalf
from gateway.agents.proof import Proof
from gateway.config import Config
from gateway.followup import ThreadResult
from gateway.mail.bounces import BounceReport
from gateway.mail.parse import ParsedMail
from gateway.routing.facts import Decision
from gateway.tickets.events import Event, Events
from gateway.tickets.store import TicketRef

# The null reverse path as stored in `inbound.mail_from`; an empty string there means "unknown"
# (a pipe or IMAP import without an envelope), which must not be mistaken for a bounce.
NULL_SENDER = "<>"


class Reject(Exception):
    """A rule sent the message to quarantine (the stage's reason is the rule's)."""


class Defer(Exception):
    """The item goes back to the queue for a while: it is not bad, only early or unlucky."""

    def __init__(self, reason: str, delay: float, counts: bool = True) -> None:
        super().__init__(reason)
        self.delay = delay
        self.counts = counts  # waiting for a parent counts towards the bound; a deadlock does not


def base_mailbox(address: str) -> str:
    """`support+t104233.3f9a@x` is a reply address of `support@x`."""
    local, _, domain = address.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


@dataclass
class Opening:
    """A ticket to open for this mail: in which mailbox, as routing decided, linked to an old one."""

    mailbox: str
    decision: Decision
    linked_id: int | None = None
    linked_number: int | None = None
    # Why an old ticket is not reopened but linked to a new one ("the ticket is closed").
    why: str = ""


@dataclass
class Opened:
    """A ticket the create stage opened, for the stages that answer and announce it."""

    opening: Opening
    ticket: TicketRef
    customer_email: str
    customer_name: str
    language: str
    # What was left out of the stored message (attachments over the limit, held parts).
    dropped: list[str] = field(default_factory=list)


@dataclass
class Context:
    """One inbound item on its way through the stages; stages annotate it."""

    inbound_id: int
    claim: str
    raw: bytes
    mail_from: str
    rcpt_to: list[str]
    source: str
    # The SMTP client's IP address ("" for pipe and IMAP): whether our MTA handed it over.
    peer: str = ""
    # How often the item waited for a parent already; None: not from the queue (never waits).
    deferrals: int | None = None
    parsed: ParsedMail | None = None
    kind: str = "customer"
    reasons: list[str] = field(default_factory=list)
    bounce: BounceReport | None = None
    text: str = ""
    body: str = ""
    html: str = ""
    signature: str = ""  # taken off `text`, kept beside it
    # The second decision beside `kind`: may this mail get an automatic answer (confirmation)?
    may_auto_answer: bool = True
    no_answer_reasons: list[str] = field(default_factory=list)
    # A mail this one answers that is still queued (another daemon holds it).
    queued_parent: int | None = None
    thread: ThreadResult | None = None
    mailboxes: list[str] = field(default_factory=list)
    # Our mailboxes this delivery is for that no earlier copy of the same mail covered.
    fresh: list[str] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)
    # Departments an earlier delivery of this same mail already opened a ticket in.
    covered_departments: set[str | None] = field(default_factory=set)
    openings: list[Opening] = field(default_factory=list)
    opened: list[Opened] = field(default_factory=list)
    ticket_numbers: list[int] = field(default_factory=list)
    # What the stages' actions cause, for the notify stage (`gateway.tickets.events`).
    events: list[Event] = field(default_factory=list)
    notifications: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcome: str = ""
    stage: str = ""
    # Nothing is left for the later stages to do (see the module docstring).
    settled: bool = False
    proof: Proof = field(default_factory=Proof)
    # A ticket an agent opens for a customer: whose it is and their words.
    on_behalf: OnBehalf | None = None
    # What `gateway.mail.limits` cut from a message over a cap: notes for the ticket.
    held: list[str] = field(default_factory=list)

    @property
    def mail(self) -> ParsedMail:
        assert self.parsed is not None, "parse stage has not run"
        return self.parsed

    @property
    def sender(self) -> str:
        """Whose mail this is: the From address, or the customer an agent writes for."""
        if self.on_behalf is not None:
            return self.on_behalf.address
        return self.mail.from_addr or ("" if self.mail_from == NULL_SENDER else self.mail_from.lower())

    @property
    def sender_name(self) -> str:
        return self.on_behalf.name if self.on_behalf is not None else self.mail.from_name

    @property
    def subject(self) -> str:
        return self.on_behalf.subject if self.on_behalf is not None else self.mail.subject

    @property
    def threaded(self) -> list[int]:
        """The tickets the thread stage found for this mail (none yet: an empty list)."""
        return self.thread.ticket_ids if self.thread is not None else []

    def acting(self, config: Config) -> Events:
        """An `Events` that adds to this item's events."""
        return Events(config, self.events)

    def settle(self, outcome: str) -> None:
        """The item is done: `outcome` says how, and the later stages leave it alone."""
        self.outcome = outcome
        self.settled = True

    def trace(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reasons": self.reasons,
            "automatic": self.kind in ("auto_reply", "bounce", "loop"),
            "may_auto_answer": self.may_auto_answer,
            "no_answer_reasons": self.no_answer_reasons,
            "sender_from": self.parsed.sender.source if self.parsed else "",
            "sender_as_written": self.parsed.sender.address if self.parsed else "",
            "proof": self.proof.summary(),
            "thread": self.thread.by if self.thread else None,
            "thread_note": self.thread.note if self.thread else "",
            "rules": {box: d.matched for box, d in self.decisions.items()},
            "department_from": {box: d.department_from for box, d in self.decisions.items()},
            "notes": self.notes + [n for d in self.decisions.values() for n in d.notes],
        }
