"""What routing is asked and what it answers: `Facts` about one message in, a `Decision` out.

These two plain records are all a caller of routing needs to know about it: the processor
fills `Facts` for each of our mailboxes a message was addressed to, and acts on the
`Decision` that `gateway.routing.router.route` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["deliver", "quarantine", "drop", "reject"]


@dataclass
class Facts:
    """What routing may look at in one message, for one of our mailboxes.

    `mailbox` is our base address (without a reply token); `body` is the new text of the
    message, without quoted history; `to` and `cc` are the headers' addresses.
    """

    mailbox: str
    from_addr: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    # Header names in lower case, each with all its values.
    headers: Mapping[str, list[str]] = field(default_factory=dict)
    has_attachment: bool = False
    language: str | None = None
    organisation: str | None = None
    topic: str | None = None
    followup: bool = False
    business_hours: bool = True


@dataclass
class Decision:
    """What the rules (and, through `route`, the directory) decided for one message."""

    matched: list[str] = field(default_factory=list)
    department: str | None = None
    topic: str | None = None
    priority: str | None = None
    sla: str | None = None
    assignee: str | None = None
    tags: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    confirm: bool = True
    action: Action = "deliver"
    action_reason: str | None = None
    # Where `department` came from: "rule", "organisation", "topic" or "default".
    department_from: str | None = None
    # Required fields of the topic that a new customer did not give (filled by `route`).
    missing_fields: list[str] = field(default_factory=list)
    # Why `route` chose what it chose, for `postdesk route` and the ticket's event log.
    notes: list[str] = field(default_factory=list)
