"""The sender: delivers outbox rows to the relay with retries and backoff; gives up as `dead`.

It owns the order mail leaves in: customers' mail (confirmations, status mail, answers) before
the staff's (notices, digests, the admin's reports), and staff mail no later than `staff_wait`
seconds after it fell due. Rows are leased (see `gateway.db.queues`), sent over a few SMTP
sessions that stay open across batches (each session carries many mails), and marked `sent` after
the relay accepted them. A daemon killed between the relay's 250 and that mark sends the mail
again when it comes back: the only duplicate "nothing lost" allows.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import ColumnElement, Engine, and_, case, or_, select, update

from gateway import metrics
from gateway.clock import utcnow
from gateway.config import Config
from gateway.db.queues import new_claim, release
from gateway.db.retry import is_transient
from gateway.db.rows import OutboxRow
from gateway.db.tables import OUTBOX
from gateway.validate import address_problem

log = logging.getLogger("gateway.outbox")

# The kinds `gateway.notify` and `gateway.postmaster` give mail to staff: notices ("staff:…"),
# results of agents' mail ("agent:…"), the admin's reports and postmaster's forwards. Every
# other kind goes to a customer, a third party or someone signing in, who is waiting for it.
STAFF_PREFIXES = ("staff:", "agent:")
STAFF_KINDS = ("admin", "postmaster")


def _staff_mail() -> ColumnElement[bool]:
    """Whether an outbox row is staff mail, as SQL (the claim orders by it)."""
    return or_(*(OUTBOX.c.kind.startswith(prefix) for prefix in STAFF_PREFIXES), OUTBOX.c.kind.in_(STAFF_KINDS))


def claim_due(engine: Engine, token: str, *, limit: int, lease: timedelta, staff_wait: timedelta) -> list[OutboxRow]:
    """Lease up to `limit` due rows to `token` and return them in the order to send them.

    Customers' mail first, then staff mail, each oldest first; staff mail due for longer than
    `staff_wait` takes its turn among the customers' (by id), so that a steady stream of
    confirmations delays notices to staff by at most that much, never for ever.
    """
    now = utcnow()
    waits = and_(_staff_mail(), OUTBOX.c.next_attempt_at > now - staff_wait)
    due = and_(OUTBOX.c.state == "pending", OUTBOX.c.next_attempt_at <= now,
               or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now))
    ids = select(OUTBOX.c.id).where(due).order_by(case((waits, 1), else_=0), OUTBOX.c.id).limit(limit)
    if engine.dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    with engine.begin() as conn:
        order = {row_id: place for place, row_id in enumerate(conn.execute(ids).scalars())}
        if not order:
            return []
        stmt = (update(OUTBOX).where(OUTBOX.c.id.in_(list(order)))
                .values(claim=token, lease_until=now + lease).returning(*OUTBOX.c))
        rows: list[OutboxRow] = list(conn.execute(stmt))
    rows.sort(key=lambda row: order[row.id])
    return rows


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
    """Write what happened to each row in one transaction (only rows still leased to us).

    The mails the relay took are one statement; each failure is its own (it has its own
    attempt count, backoff and reason).
    """
    now = utcnow()
    sent = [result.row_id for result in results if result.ok]
    with engine.begin() as conn:
        if sent:
            conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_(sent), OUTBOX.c.claim == token)
                         .values(state="sent", sent_at=now, attempts=OUTBOX.c.attempts + 1, lease_until=None))
        for result in results:
            if not result.ok:
                values = _failure(config, rows[result.row_id], result, now)
                mine = (OUTBOX.c.id == result.row_id) & (OUTBOX.c.claim == token)
                conn.execute(update(OUTBOX).where(mine).values(lease_until=None, **values))


def _failure(config: Config, row: OutboxRow, result: Result, now: datetime) -> dict[str, Any]:
    """The row's values after a failed attempt: pending again after its backoff, or dead."""
    attempts = row.attempts + 1
    dead = result.permanent or attempts >= config.outbox.max_attempts
    if dead:
        log.error("outbox %d %s to %s message %s is dead after %d attempt(s): %s", row.id, row.kind,
                  row.rcpt_to, row.message_id, attempts, result.error)
    else:
        log.warning("outbox %d %s to %s message %s failed (attempt %d), retrying: %s", row.id, row.kind,
                    row.rcpt_to, row.message_id, attempts, result.error)
    return {"state": "dead" if dead else "pending", "attempts": attempts, "last_error": result.error[:1000],
            "next_attempt_at": now + backoff(config, attempts)}


class Sender:
    """Claims due mail, hands it to the relay over `relay.connections` sessions, records the outcome.

    Its database calls run on a thread of its own: on the daemon's work thread each claim and
    each record would wait behind a whole processor batch, and confirmations with it.
    """

    def __init__(self, engine: Engine, config: Config, instance: str) -> None:
        self.engine = engine
        self.config = config
        self.instance = instance
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="db-outbox")
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
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        self._clients[slot] = client
        return client

    async def _send_one(self, slot: int, row: OutboxRow) -> Result:
        """One mail on the session in `slot`; whatever goes wrong is this mail's alone.

        The session stays open for the next mail: after a refusal `_reset` resets the envelope
        (RSET); after a broken dialogue the session is dropped and the next mail opens a new one.
        """
        # A bad address would be written into the SMTP dialogue and derail the connection for
        # the mail after it: refuse it before it reaches the client.
        problem = _envelope_problem(row)
        if problem:
            return Result(row.id, False, permanent=True, error=problem)
        try:
            client = await self._client(slot)
            await _transaction(client, row, self.config.relay.timeout)
            return Result(row.id, True)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(slot, exc.code)
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

    async def _reset(self, slot: int, code: int) -> None:
        """After the relay refused a mail: keep the session for the next one if RSET is answered.

        A refusal is about that mail; opening a new session for the next costs a handshake
        (and a login) for nothing. A relay that is closing the session (421) or does not answer
        RSET loses it.
        """
        client = self._clients[slot]
        if code != 421 and client is not None and client.is_connected:
            try:
                await client.rset()
                return
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                pass
        await self._drop(slot)

    async def _drop(self, slot: int) -> None:
        client, self._clients[slot] = self._clients[slot], None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken connection may fail again; nothing to keep
                pass

    async def run_batch(self) -> int:
        """Claim, send and record one batch; returns how many mails it held (0: nothing due)."""
        loop = asyncio.get_running_loop()
        token = new_claim(self.instance)
        outbox = self.config.outbox
        lease, staff_wait = timedelta(seconds=outbox.lease_seconds), timedelta(seconds=outbox.staff_wait)
        rows = await loop.run_in_executor(
            self.executor,
            lambda: claim_due(self.engine, token, limit=outbox.batch_size, lease=lease, staff_wait=staff_wait),
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
        self._count(results)
        return len(rows)

    def _count(self, results: list[Result]) -> None:
        sent = sum(1 for r in results if r.ok)
        self.sent += sent
        metrics.delivered(sent)
        for result in results:
            if not result.ok:
                metrics.delivery_failed(result.permanent)
        if sent:
            log.info("delivered %d mail(s) to the relay %s:%d", sent, self.config.relay.host, self.config.relay.port)

    async def _send_all(self, rows: Sequence[OutboxRow]) -> list[Result]:
        """Send `rows` in their order: each session takes the next mail as soon as it is free.

        One shared queue rather than a share per session, so that a slow mail on one session
        holds back no other, and customers' mail at the head goes out before the staff's behind it.
        """
        waiting = deque(rows)
        results: list[Result] = []

        async def session(slot: int) -> None:
            while waiting:
                results.append(await self._send_one(slot, waiting.popleft()))

        await asyncio.gather(*(session(slot) for slot in range(min(len(self._clients), len(rows)))))
        return results

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
        """Say QUIT on every open session and stop the database thread."""
        for slot in range(len(self._clients)):
            client = self._clients[slot]
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    pass
            self._clients[slot] = None
        self.executor.shutdown(wait=True)


async def _transaction(client: aiosmtplib.SMTP, row: OutboxRow, timeout: float) -> None:
    """MAIL, RCPT and DATA of one mail on an open session, within `timeout` seconds in all (the
    relay's `timeout`: how long one attempt may take); a refusal raises its response.

    The commands themselves rather than `sendmail`: the envelope was checked before
    (`_envelope_problem`), and `sendmail` parses both addresses again and rewrites the line
    endings of the whole message a second time only to count its SIZE. One deadline for the
    mail instead of one per command: each command's own costs a timer and a wrapping task, a
    sixth of the client's CPU per mail (measured with a bare aiosmtpd server). A mail has one
    recipient, so a refused RCPT is the mail's refusal (the caller resets the session); a mail
    out of time raises TimeoutError, and the caller drops the session.
    """
    options = [f"SIZE={_wire_size(row.raw)}"] if client.supports_extension("size") else []
    async with asyncio.timeout(timeout):
        await client.mail(row.mail_from, options=options, timeout=None)
        await client.rcpt(row.rcpt_to, timeout=None)
        await client.data(row.raw, timeout=None)


def _wire_size(raw: bytes) -> int:
    """The octets DATA sends (RFC 1870): every line ending written as CRLF, the last line ended."""
    pairs = raw.count(b"\r\n")
    size = len(raw) + (raw.count(b"\n") - pairs) + (raw.count(b"\r") - pairs)
    return size if raw.endswith((b"\n", b"\r")) else size + 2


def _envelope_problem(row: OutboxRow) -> str | None:
    if row.mail_from:
        problem = address_problem(row.mail_from)
        if problem:
            return f"sender {row.mail_from!r}: {problem}"
    problem = address_problem(row.rcpt_to)
    return f"recipient {row.rcpt_to!r}: {problem}" if problem else None
