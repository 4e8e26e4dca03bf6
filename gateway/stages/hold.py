"""The `hold` stage (whole batch): copies of one mail in batches of two daemons take turns.

It decides nothing about a message; it holds each Message-ID of the batch (`gateway.copies`),
so that the copies stage of the other daemon sees this batch's copy once it commits.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.copies import hold_message_ids
from gateway.stages.base import BatchStage, Services
from gateway.stages.context import Context


def hold(contexts: list[Context], services: Services, conn: Connection) -> None:
    hold_message_ids(conn, [ctx.parsed.message_id for ctx in contexts if ctx.parsed])


STAGE = BatchStage("hold", hold)
