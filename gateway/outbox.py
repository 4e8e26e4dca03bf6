"""The sender: delivers outbox rows to the relay with retries and backoff; gives up as `dead`.

Rows are leased (see `gateway.db.queues`), sent over a few persistent SMTP connections, and marked
`sent` after the relay accepted them. A daemon killed between the relay's 250 and that mark sends
the mail again when it comes back: the only duplicate "nothing lost" allows.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import Engine, update

from gateway import metrics
from gateway.clock import utcnow
from gateway.config import Config
from gateway.db.queues import claim_outbox, new_claim, release
from gateway.db.retry import is_transient
from gateway.db.rows import OutboxRow
from gateway.db.tables import OUTBOX
from gateway.validate import address_problem

log = logging.getLogger("gateway.outbox")


@dataclass(frozen=True)
class Result:
    row_id: int
    ok: bool
    permanent: bool = False
    error: str = ""


def backoff(config: Config, attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: doubling from `backoff_initial`, capped."""
    seconds = config.outbox.backoff_initial * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, config.outbox.backoff_max))


def record_results(engine: Engine, config: Config, token: str, rows: dict[int, OutboxRow], results: list[Result]) -> None:
    """Write what happened to each row in one transaction (only rows still leased to us)."""
    now = utcnow()
    with engine.begin() as conn:
        for result in results:
            row = rows[result.row_id]
            mine = (OUTBOX.c.id == result.row_id) & (OUTBOX.c.claim == token)
            if result.ok:
                values: dict[str, Any] = {"state": "sent", "sent_at": now, "attempts": row.attempts + 1}
            else:
                attempts = row.attempts + 1
                dead = result.permanent or attempts >= config.outbox.max_attempts
                values = {
                    "state": "dead" if dead else "pending",
                    "attempts": attempts,
                    "last_error": result.error[:1000],
                    "next_attempt_at": now + backoff(config, attempts),
                }
                if dead:
                    log.error("outbox %d %s to %s message %s is dead after %d attempt(s): %s", row.id, row.kind,
                              row.rcpt_to, row.message_id, attempts, result.error)
                else:
                    log.warning("outbox %d %s to %s message %s failed (attempt %d), retrying: %s", row.id, row.kind,
                                row.rcpt_to, row.message_id, attempts, result.error)
            conn.execute(update(OUTBOX).where(mine).values(lease_until=None, **values))


class Sender:
    def __init__(self, engine: Engine, config: Config, executor: Executor, instance: str) -> None:
        self.engine = engine
        self.config = config
        self.executor = executor
        self.instance = instance
        self._clients: list[aiosmtplib.SMTP | None] = [None] * config.relay.connections
        self.sent = 0

    async def _client(self, slot: int) -> aiosmtplib.SMTP:
        client = self._clients[slot]
        if client is not None and client.is_connected:
            return client
        relay = self.config.relay
        client = aiosmtplib.SMTP(
            hostname=relay.host, port=relay.port, timeout=relay.timeout, start_tls=relay.starttls or False
        )
        await client.connect()
        if relay.username:
            await client.login(relay.username, relay.password or "")
        self._clients[slot] = client
        return client

    async def _send_one(self, slot: int, row: OutboxRow) -> Result:
        # A bad address would be written into the SMTP dialogue and derail the connection for
        # the mail after it: refuse it before it reaches the client.
        problem = _envelope_problem(row)
        if problem:
            return Result(row.id, False, permanent=True, error=problem)
        try:
            client = await self._client(slot)
            errors, _ = await client.sendmail(row.mail_from, [row.rcpt_to], row.raw)
            if errors:
                code, text = next(iter(errors.values()))
                return Result(row.id, False, permanent=code >= 500, error=f"{code} {text}")
            return Result(row.id, True)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            code = refused.code if refused else 550
            return Result(row.id, False, permanent=code >= 500, error=str(exc))
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop(slot)
            return Result(row.id, False, permanent=exc.code >= 500, error=f"{exc.code} {exc.message}")
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            await self._drop(slot)
            return Result(row.id, False, error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            # Anything else is this mail's alone: its connection is in an unknown state, so it
            # goes; bad values (ValueError, UnicodeError) will not get better by retrying.
            log.exception("outbox %d: unexpected failure while sending", row.id)
            await self._drop(slot)
            permanent = isinstance(exc, ValueError)
            return Result(row.id, False, permanent=permanent, error=f"{type(exc).__name__}: {exc}")

    async def _drop(self, slot: int) -> None:
        client, self._clients[slot] = self._clients[slot], None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken connection may fail again; nothing to keep
                pass

    async def _worker(self, slot: int, rows: Sequence[OutboxRow]) -> list[Result]:
        return [await self._send_one(slot, row) for row in rows]

    async def run_batch(self) -> int:
        loop = asyncio.get_running_loop()
        token = new_claim(self.instance)
        lease = timedelta(seconds=self.config.outbox.lease_seconds)
        rows = await loop.run_in_executor(
            self.executor,
            lambda: claim_outbox(self.engine, token, limit=self.config.outbox.batch_size, lease=lease),
        )
        if not rows:
            return 0
        try:
            results = await self._send_all(rows)
        except BaseException:
            # Nothing was recorded: give the rows back now rather than at lease expiry.
            await loop.run_in_executor(self.executor, release, self.engine, OUTBOX, token)
            raise
        await self._record(token, {row.id: row for row in rows}, results)
        sent = sum(1 for r in results if r.ok)
        self.sent += sent
        metrics.delivered(sent)
        for result in results:
            if not result.ok:
                metrics.delivery_failed(result.permanent)
        if sent:
            log.info("delivered %d mail(s) to the relay %s:%d", sent, self.config.relay.host, self.config.relay.port)
        return len(rows)

    async def _send_all(self, rows: Sequence[OutboxRow]) -> list[Result]:
        slots = len(self._clients)
        shares = [rows[i::slots] for i in range(slots)]
        return [
            result
            for part in await asyncio.gather(*(self._worker(i, share) for i, share in enumerate(shares) if share))
            for result in part
        ]

    async def _record(self, token: str, rows: dict[int, OutboxRow], results: list[Result]) -> None:
        """Record the results, retrying a database that went away meanwhile.

        The relay has taken these mails: giving the rows back unrecorded would send them again.
        Recording is retried (with jitter) for up to half the lease; only then does the lease
        decide.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.outbox.lease_seconds / 2
        pause = 0.1
        while True:
            try:
                await loop.run_in_executor(self.executor, record_results, self.engine, self.config, token, rows,
                                           results)
                return
            except Exception as exc:
                if not is_transient(exc) or loop.time() + pause > deadline:
                    raise
                log.warning("could not record %d delivery result(s), retrying: %s", len(results), exc)
                await asyncio.sleep(pause * random.uniform(0.5, 1.5))
                pause = min(pause * 2, 5.0)

    async def close(self) -> None:
        for slot in range(len(self._clients)):
            client = self._clients[slot]
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    pass
            self._clients[slot] = None


def _envelope_problem(row: OutboxRow) -> str | None:
    if row.mail_from:
        problem = address_problem(row.mail_from)
        if problem:
            return f"sender {row.mail_from!r}: {problem}"
    problem = address_problem(row.rcpt_to)
    return f"recipient {row.rcpt_to!r}: {problem}" if problem else None
