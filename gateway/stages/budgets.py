"""The `budgets` stage (whole batch): what may hold back the batch's answers, read once for all.

It decides nothing: in a set-based run it reads the suppressions and the per-recipient mail
budgets of every writer in the batch in two statements (`gateway.guard.read_ahead`), so that
the notify stage's checks of each confirmation need not read them one by one. What a take
leaves in a bucket is held with the batch's writes (`gateway.guard`), and the next take of
the same bucket in the batch starts from it.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.guard import read_ahead
from gateway.stages.base import BatchStage, Services
from gateway.stages.context import Context


def budgets(contexts: list[Context], services: Services, conn: Connection) -> None:
    read_ahead(conn, [ctx.sender for ctx in contexts if not ctx.stage and ctx.parsed is not None])


STAGE = BatchStage("budgets", budgets)
