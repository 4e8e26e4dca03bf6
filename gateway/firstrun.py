"""The line `postdesk serve` logs once it listens: where SMTP, the web page and metrics are, and
whether the relay answers.

A newcomer who starts the daemon on a fresh machine has no relay on 127.0.0.1:25; their
confirmations wait in the outbox. This line says so at once, with where to look, instead of
leaving them to find retries in the log later. The relay is probed with a plain TCP connect
(no SMTP conversation: `postdesk doctor` does that), in the background, so start-up never
waits for it.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.config import Config

log = logging.getLogger("gateway.daemon")
PROBE_SECONDS = 3.0


async def relay_problem(host: str, port: int, timeout: float = PROBE_SECONDS) -> str | None:
    """None when something accepts a connection on the relay's address, else why not."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return f"no answer within {timeout:.0f} s"
    except ConnectionRefusedError:
        return "connection refused: nothing listens there"
    except OSError as exc:
        return exc.strerror or str(exc)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


def listening(config: Config, *, web: bool, metrics: bool) -> str:
    parts = [f"SMTP on {config.smtp.listen}"]
    parts.append(f"web page {config.web.base_url} (listening on {config.web.listen})" if web else "web page off")
    parts.append(f"metrics on http://{config.metrics.listen}/metrics" if metrics else "metrics off")
    return ", ".join(parts)


async def announce(config: Config, *, web: bool, metrics: bool) -> None:
    where = listening(config, web=web, metrics=metrics)
    relay = f"{config.relay.host}:{config.relay.port}"
    problem = await relay_problem(config.relay.host, config.relay.port)
    if problem is None:
        log.info("listening: %s; relay %s answers", where, relay)
        return
    log.warning("listening: %s; no relay answers on %s (%s): outgoing mail waits in the outbox and is retried "
                "(see it with `postdesk outbox list` or on the web page /outbox; set relay.host and relay.port)",
                where, relay, problem)
