"""The small HTTP listener of a running daemon: /metrics and /healthz.

The listener (`metrics.listen`, default 127.0.0.1:9125) is a small Starlette app served by
uvicorn in the daemon's own loop, as the web history is; the daemon hands in the server that runs
it (`serve`, a `Listener` factory), so this module knows nothing of the web tier. Queue depths
and ages are read from the database at scrape time. It answers GET (and HEAD) only:

- `/metrics`: Prometheus text (or OpenMetrics when the scraper asks for it), from
  `gateway.metrics.REGISTRY`,
- `/healthz/live`: 200 while the event loop answers at all (a blocked loop answers nothing),
- `/healthz/ready` and `/healthz`: 200 when the database answers and its schema is the one this
  code expects; otherwise 503 with a JSON reason. A stopping daemon is not ready.
"""


from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from prometheus_client.exposition import choose_encoder
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config import parse_hostport
from gateway.db.engine import sqlite_reader
from gateway.db.tables import INBOUND, OUTBOX, QUARANTINE
from gateway.metrics import DATABASE_UP, QUEUE_AGE, QUEUE_DEPTH, REGISTRY, aware

log = logging.getLogger("gateway.monitor")
_T = TypeVar("_T")
# -- read at scrape time ------------------------------------------------------------------------

_WAITING = {
    "inbound": (INBOUND, INBOUND.c.state == "queued", INBOUND.c.received_at),
    "outbox": (OUTBOX, OUTBOX.c.state == "pending", OUTBOX.c.created_at),
    "quarantine": (QUARANTINE, QUARANTINE.c.released_at.is_(None), QUARANTINE.c.created_at),
}


def queue_snapshot(engine: Engine) -> dict[str, tuple[int, float]]:
    """Depth and oldest age in seconds of each queue; the filters use the queues' state indexes."""
    now = datetime.now(UTC)
    found: dict[str, tuple[int, float]] = {}
    with engine.connect() as conn:
        for name, (table, waiting, since) in _WAITING.items():
            count, oldest = conn.execute(select(func.count(), func.min(since)).select_from(table).where(waiting)).one()
            age = (now - aware(oldest)).total_seconds() if oldest is not None else 0.0
            found[name] = (int(count), max(age, 0.0))
    return found


# A scrape or probe that takes longer than this is answered 503: Prometheus times out at 10 s.
DB_TIMEOUT = 5.0


def read_engine(url: str) -> Engine:
    """A small engine of the listener's own, for reads that must not queue behind the writers.

    On SQLite the lock-free reader the web history uses; on PostgreSQL time limits keep a sick
    server from holding a scrape (and the listener's one thread) for ever.
    """
    if make_url(url).get_backend_name() == "sqlite":
        return sqlite_reader(url, timeout=DB_TIMEOUT)
    return create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True,
                         connect_args={"connect_timeout": int(DB_TIMEOUT),
                                       "options": f"-c statement_timeout={int(DB_TIMEOUT * 1000)}"})


def readiness(engine: Engine, expected_revision: str | None) -> tuple[bool, str]:
    """Whether the database answers and carries the schema this code was written for."""
    from gateway.db.engine import current_revision

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(engine)
    except Exception as exc:
        return False, f"database unreachable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if revision != expected_revision:
        return False, f"schema at revision {revision or 'none'}, this code expects {expected_revision}"
    return True, f"schema at revision {revision}"


# -- the listener -------------------------------------------------------------------------------

class Listener(Protocol):
    """A server for one app on the running event loop: `start` raises OSError when it cannot listen."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Serve(Protocol):
    """Makes the `Listener` for an app on `host:port`; `on_stop` runs once it has stopped."""

    def __call__(self, app: Starlette, host: str, port: int, *, on_stop: Callable[[], None]) -> Listener: ...


class MetricsServer:
    """/metrics and /healthz on `listen`: a small Starlette app on the daemon's event loop."""

    def __init__(self, listen: str, database_url: str, *, serve: Serve,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        from gateway.db.engine import head_revision

        self.host, self.port = parse_hostport(listen)
        self.serve = serve
        self.stopping = stopping
        self.engine = read_engine(database_url)
        self.expected_revision = head_revision()
        # One thread: scrapes never pile up database work, however often they come.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="metrics")
        self.app = Starlette(routes=[
            Route("/metrics", self._metrics, methods=["GET"]),
            Route("/healthz/live", self._live, methods=["GET"]),
            Route("/healthz", self._ready, methods=["GET"]),
            Route("/healthz/ready", self._ready, methods=["GET"]),
        ])
        self._server: Listener | None = None

    async def start(self) -> bool:
        """Listen; a port that cannot be had is logged and the daemon goes on without metrics.

        Mail intake matters more than its gauges: like the web history, a listener that cannot
        start leaves the mail side running (`postdesk doctor` does not check this port).
        """
        server = self.serve(self.app, self.host, self.port, on_stop=self._close)
        try:
            await server.start()
        except OSError as exc:
            log.error("metrics listener not started on %s:%d: %s", self.host, self.port, exc)
            self._close()
            return False
        self._server = server
        log.info("metrics and health on http://%s:%d/metrics and /healthz", self.host, self.port)
        return True

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()

    def _close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()

    async def _in_pool(self, work: Callable[[], _T]) -> _T:
        return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self._pool, work), DB_TIMEOUT)

    async def _metrics(self, request: Request) -> Response:
        try:
            snapshot: dict[str, tuple[int, float]] = await self._in_pool(lambda: queue_snapshot(self.engine))
        except Exception as exc:
            # The counters are still worth serving; the queue gauges keep their last values
            # and postdesk_database_up says they are stale.
            log.warning("metrics: could not read the queues: %s: %s", type(exc).__name__, exc)
            DATABASE_UP.set(0)
        else:
            DATABASE_UP.set(1)
            for name, (depth, age) in snapshot.items():
                QUEUE_DEPTH.labels(name).set(depth)
                QUEUE_AGE.labels(name).set(age)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(REGISTRY), headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    async def _live(self, request: Request) -> Response:
        return _json(200, {"status": "alive"})

    async def _ready(self, request: Request) -> Response:
        if self.stopping():
            return _json(503, {"status": "unavailable", "live": True, "ready": False, "reason": "stopping"})
        try:
            ok, detail = await self._in_pool(lambda: readiness(self.engine, self.expected_revision))
        except TimeoutError:
            ok, detail = False, f"database did not answer within {DB_TIMEOUT:.0f} s"
        if ok:
            return _json(200, {"status": "ok", "live": True, "ready": True, "detail": detail})
        return _json(503, {"status": "unavailable", "live": True, "ready": False, "reason": detail})


def _json(status: int, payload: dict[str, Any]) -> Response:
    return JSONResponse(payload, status_code=status, headers={"Cache-Control": "no-store"})
