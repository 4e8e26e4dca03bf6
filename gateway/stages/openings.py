"""The `openings` stage: which tickets a mail that threads nowhere opens.

Automatic mail (auto-replies, bounces, loops) never opens a ticket by itself; a mail every
rule drops opens none; otherwise one ticket per department among the fresh mailboxes (two of
our addresses routing to one team make one ticket), leaving out departments an earlier copy
of the same mail already opened a ticket in. A reply the follow-up stage turned into a new
linked ticket has its opening already.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.routing.facts import Decision
from gateway.stages.base import ItemStage, Services
from gateway.stages.context import Context, Opening


def openings(ctx: Context, services: Services, conn: Connection) -> None:
    if ctx.openings:
        return
    if ctx.kind != "customer":
        ctx.settle(ctx.outcome or f"recorded {ctx.kind} without ticket: {'; '.join(ctx.reasons)}")
        return
    decisions = {box: d for box, d in ctx.decisions.items() if box in ctx.fresh}
    if decisions and all(d.action == "drop" for d in decisions.values()):
        reasons = "; ".join(f"{d.matched[-1]}: {d.action_reason}" for d in decisions.values())
        ctx.settle(f"dropped by rule ({reasons})")
        return
    by_department: dict[str | None, tuple[str, Decision]] = {}
    for box, decision in decisions.items():
        if decision.action == "deliver" and decision.department not in ctx.covered_departments:
            by_department.setdefault(decision.department, (box, decision))
    if not by_department:
        ctx.settle("duplicate delivery: its departments already have its ticket")
        return
    ctx.openings = [Opening(box, decision) for box, decision in by_department.values()]
    ctx.outcome = "created" if len(by_department) == 1 else f"created {len(by_department)} tickets (fan-out)"


STAGE = ItemStage("openings", openings)
