"""Rate limits for requests of sign-in links: per address and per client.

This module owns `RateLimiter`, a sliding-window counter per key. It protects two things: a
person's mailbox from being flooded with sign-in mail by somebody else (the per-address limit),
and the outbox from one client asking for links to many addresses (the per-client limit). With
an engine the hits are rows of `signinhit`, so a restart forgets nothing and several daemons on
one database count together; without one (tests of the window alone) they stay in memory. The
outbox's per-recipient budgets (`gateway.guard`) stay the last guard for the mail itself.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, delete, func, insert, select

from gateway.clock import utcnow
from gateway.db.tables import SIGNIN_HIT


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: float


# Three links in ten minutes is more than a person waiting for a slow mail needs.
PER_ADDRESS = Limit(3, 600)
# One office behind one NAT address may have several people signing in at once.
PER_CLIENT = Limit(20, 600)
# Forget idle keys once there are this many, so a flood of random addresses cannot grow memory.
_PRUNE_AT = 10_000


class RateLimiter:
    """Allows `limit.count` hits per key within any `limit.seconds` window."""

    def __init__(self, limit: Limit, clock: Callable[[], float] = time.monotonic, *,
                 engine: Engine | None = None, scope: str = "") -> None:
        self.limit = limit
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        # Endpoints run on the event loop, but tests and benchmarks may call from threads.
        self._lock = threading.Lock()
        self._engine = engine
        self._scope = scope
        self._since_prune = 0

    def allow(self, key: str) -> bool:
        """Count a hit for `key` unless it is over its limit; True when it was allowed."""
        if self._engine is not None:
            return self._allow_stored(self._engine, key[:400])
        now = self._clock()
        with self._lock:
            if len(self._hits) >= _PRUNE_AT:
                self._prune(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.limit.seconds:
                hits.popleft()
            if len(hits) >= self.limit.count:
                return False
            hits.append(now)
            return True

    def _prune(self, now: float) -> None:
        cutoff = now - self.limit.seconds
        for key in [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]

    def _allow_stored(self, engine: Engine, key: str) -> bool:
        now = utcnow()
        window_start = now - timedelta(seconds=self.limit.seconds)
        mine = (SIGNIN_HIT.c.scope == self._scope) & (SIGNIN_HIT.c.key == key)
        with engine.begin() as conn:
            # Two daemons may both count just under the limit at once: one hit over it at worst.
            hits = conn.execute(select(func.count()).where(mine, SIGNIN_HIT.c.at > window_start)).scalar_one()
            if hits >= self.limit.count:
                return False
            conn.execute(insert(SIGNIN_HIT), {"scope": self._scope, "key": key, "at": now})
            self._since_prune += 1
            if self._since_prune >= 100:
                # Rows of windows gone by count for nothing; dropping them keeps the table small.
                self._since_prune = 0
                conn.execute(delete(SIGNIN_HIT).where(SIGNIN_HIT.c.scope == self._scope,
                                                      SIGNIN_HIT.c.at <= window_start))
        return True
