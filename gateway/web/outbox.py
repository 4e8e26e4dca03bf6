"""The staff page of the outbox: what Postdesk sent, what waits for the relay, and why.

On a first run without a relay, confirmations wait in the outbox; this page (and `postdesk
outbox list`) shows them. Agents see the mail of the tickets they may see; a support lead,
everything. Customers and organisation managers get the same 404 as for a ticket not theirs.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.db.tables import AnyRow
from gateway.web import store
from gateway.web.context import Visit, to_signin


async def outbox_page(request: Request) -> Response:
    visit = Visit.of(request)
    viewer = await visit.viewer()
    if viewer is None:
        return to_signin(request)
    if not viewer.is_agent or viewer.scope is not None:
        return visit.not_found(viewer)

    def load() -> list[AnyRow]:
        with visit.web.reader.connect() as conn:
            return store.outbox(conn, viewer)

    rows = await run_in_threadpool(load)
    relay = f"{visit.web.config.relay.host}:{visit.web.config.relay.port}"
    return visit.page("outbox", viewer=viewer, rows=rows, relay=relay)
