"""The processor in a process of its own: a daemon's second core.

A daemon is one Python process: its SMTP intake, sender and processor share one interpreter
lock, so under load the processor waits for the loop that answers SMTP and the loop for the
processor. With `processor.run_in: process` (what `auto` means on two or more CPUs) the batches run in
a child process with its own engine, pipeline and rules. The daemon's loop still decides when a
batch runs and asks the child for one at a time, as it asked its processor thread; the child
answers how many items it handled and their latencies, which the daemon counts in its own
/metrics. The child follows the rules files as the daemon does: it looks at them before each
batch (where `rules.watch_interval` asks for watching) and reloads on SIGHUP through `reload`.

On SQLite the daemon's intake and the child write one file: they queue for it on the writer lock
of `gateway.db.engine`, which the kernel hands over without the sleeps of SQLite's busy handler.
On one CPU a second process buys nothing, and `auto` keeps the thread.

A child that dies (killed, out of memory) fails the batch it had, and the next batch starts a
new child; what the dead one had claimed goes back to the queue when its leases run out, as a
crashed daemon's claims do. The child dies with its daemon (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from gateway import collector, logs, metrics
from gateway.config import Config
from gateway.db.engine import make_engine
from gateway.process import Processor
from gateway.routing.runtime import RoutingState
from gateway.stages.pipeline import build_pipeline

log = logging.getLogger("gateway.worker")
_PR_SET_PDEATHSIG = 1


def runs_in_process(config: Config) -> bool:
    """Whether these settings put the processor in a process of its own."""
    if config.processor.run_in == "auto":
        return usable_cpus() >= 2
    return config.processor.run_in == "process"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as systemd's CPUAffinity= or taskset set it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class _Child:
    """What the child process holds between batches."""

    config: Config
    processor: Processor
    routing: RoutingState


_CHILD: _Child | None = None


def _die_with_parent(daemon: int) -> None:
    """Ask Linux to end this process when the daemon that started it ends, however it ends.

    The request only covers a daemon alive when it is made: one killed while this process was
    still starting (importing Postdesk takes it half a second) has already handed it to init,
    and then this process ends at once instead of waiting for batches that never come.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl: the child ends when its queue closes
            pass
    if os.getppid() != daemon:
        os._exit(0)


def _start(config: Config, instance: str, daemon: int) -> None:
    """The child's start: its logging, engine, rules and processor, built as the daemon builds them."""
    global _CHILD
    _die_with_parent(daemon)
    # The daemon stops the child when it stops, after the batch in hand: a SIGTERM to the whole
    # service (systemd), a Ctrl-C or a hang-up must not cut a batch short here.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    logs.setup(config.logging.level, sys.stderr)
    sys.setswitchinterval(0.001)
    metrics.hand_on_latencies()
    routing = RoutingState(config)
    engine = make_engine(config.database.url)
    _CHILD = _Child(config, Processor(engine, build_pipeline(config, routing), instance), routing)
    collector.started()


def _batch() -> tuple[int, list[float]]:
    """One batch in the child: how many items, and their latencies for the daemon's metrics."""
    assert _CHILD is not None, "the processor process was not started"
    if _CHILD.config.rules.watch_interval > 0:
        # Every batch (a few stat calls): once the daemon has seen a rules file change, the next
        # mail is routed by the new rules here too, not only after this process's next look.
        _CHILD.routing.check_files()
    try:
        return _CHILD.processor.run_batch(), metrics.taken()
    except BaseException:
        metrics.taken()  # what a failed batch measured is not the daemon's to count
        raise


def _reload(why: str) -> bool:
    assert _CHILD is not None, "the processor process was not started"
    return _CHILD.routing.reload(why)


def _ready() -> None:
    """Nothing: submitted first, so that the child starts while the daemon finishes starting."""


class ProcessWorker:
    """The daemon's side: a pool of one child process, started again when it died."""

    def __init__(self, config: Config, instance: str) -> None:
        self.config, self.instance = config, instance
        self._pool: ProcessPoolExecutor | None = None

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Spawned, not forked: the daemon has threads and an event loop a fork would copy.
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start, initargs=(self.config, self.instance, os.getpid()))
            self._pool.submit(_ready)
        return self._pool

    def start(self) -> None:
        self._running()

    async def run_batch(self) -> int:
        """One batch in the child, awaited on the daemon's loop; raises what the batch raised."""
        loop = asyncio.get_running_loop()
        try:
            done, latencies = await loop.run_in_executor(self._running(), _batch)
        except BrokenProcessPool:
            log.error("the processor process ended; a new one starts with the next batch")
            self._discard()
            raise
        metrics.observe_latencies(latencies)
        return done

    def reload(self, why: str) -> None:
        """Rules and directory read again in the child, between two batches."""
        if self._pool is not None:
            try:
                self._pool.submit(_reload, why)
            except (BrokenProcessPool, RuntimeError):
                self._discard()

    def _discard(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """After the last batch: the child finishes what it has and exits."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
