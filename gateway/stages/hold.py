"""The `hold` stage (whole batch): copies of one mail in batches of two daemons take turns.

It decides nothing about a message; it holds each Message-ID of the batch (`gateway.copies`),
so that the copies stage of the other daemon sees this batch's copy once it commits. Holding
them, it reads which of them are stored already, for the copies stage of every item at once.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.copies import hold_message_ids, read_ahead
from gateway.stages.base import BatchStage, Services
from gateway.stages.context import Context


def hold(contexts: list[Context], services: Services, conn: Connection) -> None:
    message_ids = [ctx.parsed.message_id for ctx in contexts if ctx.parsed]
    hold_message_ids(conn, message_ids)
    read_ahead(conn, message_ids)


STAGE = BatchStage("hold", hold)
