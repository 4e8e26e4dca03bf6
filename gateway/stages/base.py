"""What a stage is, and what all stages share (`Services`).

A stage is a small named component around one function over the context, in the manner of
Mailman 3's handlers. Three kinds, by where they run:

- `PrepareStage`: before any transaction is open, on one item, no database (parse, classify …).
- `BatchStage`: inside the batch's transaction, given the whole batch at once (holding copies,
  locking tickets in a fixed order). Set-based writes over a batch are stages of this kind.
- `ItemStage`: inside the transaction, on one item, in that item's own savepoint, so that one
  bad message is quarantined alone. `always` marks a stage that runs even for an item an
  earlier stage settled.

Each stage module's docstring says what its stage decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection

from gateway.agents.desk import Desk
from gateway.agents.proof import Prover
from gateway.config import Config
from gateway.links.tags import TagFormat
from gateway.mail.limits import Limits
from gateway.notify import Notifier
from gateway.postmaster import Postmaster
from gateway.routing.runtime import Routing
from gateway.stages.context import Context


class RoutingSource(Protocol):
    """Where the rules in force come from (a `RoutingState`, reloaded on SIGHUP)."""

    @property
    def current(self) -> Routing: ...


@dataclass
class Services:
    """What the stages share: configuration, the notifier, tags and the rules in force."""

    config: Config
    notifier: Notifier
    tags: TagFormat
    routing: RoutingSource
    loop_token: str = field(init=False)
    prover: Prover = field(init=False)
    desk: Desk = field(init=False)
    limits: Limits = field(init=False)
    postmaster: Postmaster = field(init=False)

    def __post_init__(self) -> None:
        # Derived from the secret once: reading store/secret.key per message would be waste.
        self.loop_token = self.config.loop_token()
        self.prover = Prover(self.config)
        self.desk = Desk(self.config, lambda: self.routing.current.directory)
        self.limits = Limits(**self.config.limits.model_dump())
        self.postmaster = Postmaster(self.config, self.loop_token)


@dataclass(frozen=True)
class PrepareStage:
    """A stage with no database: it reads the mail and annotates the context."""

    name: str
    run: Callable[[Context, Services], None]


@dataclass(frozen=True)
class BatchStage:
    """A stage given the whole batch inside its transaction (before the item stages)."""

    name: str
    run: Callable[[list[Context], Services, Connection], None]


@dataclass(frozen=True)
class ItemStage:
    """A stage on one item inside the transaction, in the item's savepoint."""

    name: str
    run: Callable[[Context, Services, Connection], None]
    always: bool = False

    def wants(self, ctx: Context) -> bool:
        return self.always or not ctx.settled
