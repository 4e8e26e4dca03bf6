"""Serving the web history from inside the daemon: uvicorn on the daemon's own event loop.

This module owns `WebServer`, which starts uvicorn's server for one ASGI app (the web history,
the metrics listener) as a task of the running loop and stops it on shutdown. The daemon keeps SIGTERM and SIGINT to itself: uvicorn would otherwise
install its own handlers and re-raise the signal after its shutdown, cutting short the
daemon's orderly stop.

A web history that cannot start (its port taken, say) is logged and left off: the mail side
must go on taking mail, which is the promise the daemon exists for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from gateway.config import Config, parse_hostport
from gateway.web.app import create_app

log = logging.getLogger("gateway.web")


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The daemon's loop owns the signals; see the module docstring.
        yield


class WebServer:
    """uvicorn serving one app on `host:port`, as a task of the current event loop."""

    def __init__(self, app: Starlette, host: str, port: int, *, on_stop: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.on_stop = on_stop
        self.server = _EmbeddedServer(uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            # Paths carry sign-in and ticket tokens; an access log would keep them on disk.
            access_log=False,
            server_header=False,
            ws="none",
            timeout_graceful_shutdown=5,
        ))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, or raise OSError when the port cannot be had."""
        self._task = asyncio.get_running_loop().create_task(self._serve())
        # uvicorn offers a flag, not an event, for "listening"; start-up takes milliseconds.
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise OSError("the web server stopped while starting")
            await asyncio.sleep(0.01)

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        except SystemExit as exc:
            # uvicorn exits the process when it cannot bind; here that is an error of one task.
            raise OSError(f"cannot listen (uvicorn exit {exc.code})") from None

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
        except TimeoutError:
            self.server.force_exit = True
            await self._task
        finally:
            self.on_stop()


async def start_web(config: Config, engine: Engine, *, on_outbox: Callable[[], None]) -> WebServer | None:
    """Start the web history on `web.listen`; None (and an error in the log) when it cannot."""
    host, port = parse_hostport(config.web.listen)
    try:
        app = create_app(config, engine, on_outbox=on_outbox)
        server = WebServer(app, host, port, on_stop=app.state.web.close)
        await server.start()
    except Exception as exc:
        log.error("web history not started on %s: %s; mail goes on without it", config.web.listen, exc)
        return None
    log.info("web history on http://%s:%d/ (links in mail: %s)", host, port, config.web.base_url)
    return server
