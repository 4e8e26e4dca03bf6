"""The pipeline, declared once: every stage an inbound message goes through, in order.

`PREPARE` runs before the transaction, with no database. `BATCH` and `ITEM` run inside the
processor's one write transaction per batch: the batch stages first, given the whole batch,
then the item stages, item by item, each item in its own savepoint (`gateway.process`). Each
stage's module says what it decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from gateway.notify import Notifier
from gateway.routing.runtime import RoutingState
from gateway.stages import (
    acknowledge,
    announce,
    bounce,
    budgets,
    check,
    classify,
    copies,
    create,
    customers,
    follow_up,
    forgery,
    hold,
    known,
    lock,
    notify,
    openings,
    parent,
    parse,
    postmaster,
    prove,
    route,
    staff_reply,
    strip,
    thread,
    wait,
)
from gateway.stages.base import BatchStage, ItemStage, PrepareStage, Services

if TYPE_CHECKING:
    from gateway.config import Config

PREPARE: tuple[PrepareStage, ...] = (parse.STAGE, classify.STAGE, check.STAGE, strip.STAGE, prove.STAGE)

BATCH: tuple[BatchStage, ...] = (hold.STAGE, lock.STAGE, budgets.STAGE, customers.STAGE)

ITEM: tuple[ItemStage, ...] = (
    postmaster.STAGE,
    parent.STAGE,
    thread.STAGE,
    wait.STAGE,
    known.STAGE,
    route.STAGE,
    copies.STAGE,
    bounce.STAGE,
    forgery.STAGE,
    staff_reply.STAGE,
    follow_up.STAGE,
    openings.STAGE,
    create.STAGE,
    acknowledge.STAGE,
    announce.STAGE,
    notify.STAGE,
)


@dataclass
class Pipeline(Services):
    """The stages in their order, with what they share."""

    prepare: ClassVar[tuple[PrepareStage, ...]] = PREPARE
    batch: ClassVar[tuple[BatchStage, ...]] = BATCH
    item: ClassVar[tuple[ItemStage, ...]] = ITEM


def build_pipeline(config: Config, routing: RoutingState | None = None) -> Pipeline:
    """The daemon's pipeline for these settings: its notifier, templates, tag and rules in force.

    The daemon, its processor process and `postdesk route` each build theirs here."""
    notifier = Notifier.for_config(config)
    return Pipeline(config=config, notifier=notifier, tags=notifier.tags, routing=routing or RoutingState(config))
