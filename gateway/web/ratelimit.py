"""Rate limits for requests of sign-in links: per address and per client.

This module owns `RateLimiter`, a sliding-window counter per key kept in this process's memory.
It protects two things: a person's mailbox from being flooded with sign-in mail by somebody
else (the per-address limit), and the outbox from one client asking for links to many
addresses (the per-client limit). Several daemons behind one balancer each count on their own,
so the effective limit is at most the number of daemons times the configured one; the outbox's
own per-recipient budgets stay the last guard.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


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

    def __init__(self, limit: Limit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        # Endpoints run on the event loop, but tests and benchmarks may call from threads.
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a hit for `key` unless it is over its limit; True when it was allowed."""
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
