"""One asyncio loop: SMTP intake, processor and sender start here and stop here, in order.

Database work runs on small thread pools so that the loop keeps answering SMTP while a batch
commits: one thread for intake commits (group commit), one for the processor (on PostgreSQL a
process of its own instead, `gateway.worker`: a second core), and the sender's own
(`gateway.outbox`, so its claims never wait behind a processor batch); the SMTP-time `reject` rules (`gateway.screen`, injected into the handler) parse in the loop's default
executor. On SIGTERM the daemon stops accepting connections, lets the intake writer commit what it holds,
finishes the batches in progress and exits. The metrics listener (`gateway.monitor`) and the
systemd watchdog (`gateway.sdnotify`) are tasks of the same loop: a loop that hangs stops both.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway import collector, firstrun, sdnotify
from gateway.config import Config
from gateway.db.engine import make_engine, upgrade
from gateway.db.queues import release_instance
from gateway.intake.imap.runner import ImapIntake
from gateway.intake.mailboxes import Mailboxes
from gateway.intake.smtp import IntakeHandler, start_server
from gateway.intake.writer import GroupWriter
from gateway.monitor import MetricsServer
from gateway.outbox import Sender
from gateway.postmaster import postmaster_addresses
from gateway.process import Processor
from gateway.routing.runtime import RoutingState
from gateway.scheduler import Duties, run_scheduler
from gateway.screen import RejectRules
from gateway.stages.pipeline import Pipeline, build_pipeline
from gateway.worker import ProcessWorker, runs_in_process

if TYPE_CHECKING:
    from gateway.web.server import WebServer

log = logging.getLogger("gateway.daemon")


def instance_name(config: Config) -> str:
    """A name that stays the same across restarts of one daemon, and differs between daemons."""
    return config.instance or f"{socket.gethostname()}:{config.smtp.host_port[1]}"


@dataclass
class Running:
    """What `Daemon.run` started and `Daemon._shut_down` stops, in that order."""

    writer: GroupWriter
    server: asyncio.Server
    imap: ImapIntake
    sender: Sender
    web: WebServer | None
    metrics: MetricsServer | None
    workers: list[asyncio.Task[None]] = field(default_factory=list)


class Daemon:
    """One daemon process: its engine, thread pools, rules in force and the events that wake its loops."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.instance = instance_name(config)
        self.engine = make_engine(config.database.url)
        self.intake_pool = ThreadPoolExecutor(1, thread_name_prefix="db-intake")
        self.work_pool = ThreadPoolExecutor(1, thread_name_prefix="db-work")
        self.stats: dict[str, int] = {}
        # Loaded before anything listens: broken rules at start-up stop the daemon with every
        # file:line: reason, instead of routing with nothing.
        self.routing = RoutingState(config)
        # The processor's own process, where the settings give it one (gateway.worker).
        self.worker: ProcessWorker | None = None
        self._stop = asyncio.Event()
        self._process_wake = asyncio.Event()
        self._send_wake = asyncio.Event()

    async def run(self) -> None:
        """Start everything in order, serve until SIGTERM or SIGINT, then stop everything in order."""
        loop = asyncio.get_running_loop()
        await self._prepare_store(loop)
        writer = GroupWriter(self.engine, self.intake_pool, on_commit=self._process_wake.set)
        writer.start()
        handler = IntakeHandler(Mailboxes(self.config.mailboxes, postmaster_addresses(self.config)), writer,
                                self.stats, RejectRules(self.routing))
        server = await start_server(self.config, handler)
        imap = ImapIntake(self.config, self.engine, self.intake_pool, on_commit=self._process_wake.set)
        imap.start()
        pipeline = build_pipeline(self.config, self.routing)
        sender = Sender(self.engine, self.config, self.instance)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        running = Running(writer, server, imap, sender, await self._start_web(), await self._start_metrics())
        loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        running.workers = self._start_workers(loop, pipeline, sender)
        log.info("Postdesk %s ready: mailboxes %s, database %s", self.instance,
                 ", ".join(self.config.mailboxes), self.engine.url.render_as_string(hide_password=True))
        # What start-up built lives as long as the daemon: out of every collection's way.
        collector.started()
        sdnotify.notify("READY=1")
        running.workers.extend(self._after_ready(loop, running))
        await self._stop.wait()
        await self._shut_down(running)

    async def _prepare_store(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bring the schema up to date and take back the leases an earlier run of ours left."""
        await loop.run_in_executor(self.work_pool, upgrade, self.engine)
        released = await loop.run_in_executor(self.work_pool, release_instance, self.engine, self.instance)
        if any(released):
            log.info("released %d inbound and %d outbox lease(s) left by an earlier run", *released)

    def _start_workers(self, loop: asyncio.AbstractEventLoop, pipeline: Pipeline,
                       sender: Sender) -> list[asyncio.Task[None]]:
        """The processor and sender loops, the rules watcher and the scheduler, as configured."""
        workers = [
            loop.create_task(self._loop("processor", self._process_wake, self.config.processor.poll_interval,
                                        self._processor_step(loop, pipeline), self._send_wake.set)),
            loop.create_task(self._loop("sender", self._send_wake, self.config.outbox.poll_interval,
                                        sender.run_batch, lambda: None)),
        ]
        if self.config.rules.watch_interval > 0:
            workers.append(loop.create_task(self._watch_rules()))
        if self.config.scheduler.enabled:
            duties = Duties(self.engine, self.config, pipeline.notifier, lambda: self.routing.current.directory)
            workers.append(loop.create_task(run_scheduler(duties, self.work_pool, self.config, self._stop)))
        return workers

    def _processor_step(self, loop: asyncio.AbstractEventLoop, pipeline: Pipeline) -> Callable[[], Awaitable[int]]:
        """One batch: in the processor's own process (gateway.worker), else on the work thread."""
        if runs_in_process(self.config):
            self.worker = ProcessWorker(self.config, self.instance)
            self.worker.start()
            log.info("processor: in a process of its own")
            return self.worker.run_batch
        processor = Processor(self.engine, pipeline, self.instance)
        return lambda: loop.run_in_executor(self.work_pool, processor.run_batch)

    def _after_ready(self, loop: asyncio.AbstractEventLoop, running: Running) -> list[asyncio.Task[None]]:
        """The first-run notice and, under systemd, the watchdog: tasks of this same loop."""
        tasks = [loop.create_task(firstrun.announce(self.config, web=running.web is not None,
                                                    metrics=running.metrics is not None))]
        interval = sdnotify.watchdog_interval()
        if interval:
            tasks.append(loop.create_task(sdnotify.watchdog(self._stop, interval)))
        return tasks

    async def _shut_down(self, running: Running) -> None:
        """No new mail first, then let what is in progress finish; the metrics listener goes last."""
        log.info("stopping: no new connections; finishing work in progress")
        sdnotify.notify("STOPPING=1")
        running.server.close()
        await running.imap.close()
        if running.web is not None:
            await running.web.stop()
        await running.writer.close()
        # Let each loop finish the batch it holds (a sender cut off mid-send would resend
        # mail the relay already took); cancel only what is still busy after the grace time.
        self._process_wake.set()
        self._send_wake.set()
        _done, busy = await asyncio.wait(running.workers, timeout=30)
        for task in busy:
            task.cancel()
        await asyncio.gather(*running.workers, return_exceptions=True)
        if self.worker is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.worker.close)
        await running.sender.close()
        if running.metrics is not None:
            # Last to go: scrapes during the drain show the queues emptying (readiness: stopping).
            await running.metrics.stop()
        self.intake_pool.shutdown(wait=True)
        self.work_pool.shutdown(wait=True)
        self.engine.dispose()
        log.info("stopped")

    async def _start_web(self) -> WebServer | None:
        if not self.config.web.enabled:
            return None
        # Imported only when enabled: a daemon without the web history does not load it.
        from gateway.web.server import start_web

        return await start_web(self.config, self.engine, on_outbox=self._send_wake.set)

    async def _start_metrics(self) -> MetricsServer | None:
        if not self.config.metrics.listen:
            return None
        from gateway.web.server import WebServer

        server = MetricsServer(self.config.metrics.listen, self.config.database.url, serve=WebServer,
                               stopping=self._stop.is_set)
        return server if await server.start() else None

    def reload(self, why: str) -> None:
        """Reload rules and templates; the ones in force stay when the new ones do not load."""
        self.routing.reload(why)
        if self.worker is not None:
            self.worker.reload(why)

    async def _watch_rules(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.config.rules.watch_interval)
            except TimeoutError:
                self.routing.check_files()

    async def _loop(
        self,
        name: str,
        wake: asyncio.Event,
        interval: float,
        step: Callable[[], Awaitable[int]],
        after: Callable[[], None],
    ) -> None:
        """Run `step` until it finds no work, then sleep until woken or `interval` passes."""
        while not self._stop.is_set():
            wake.clear()
            try:
                done = await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A database outage must not kill the daemon: log it and try again after a pause.
                log.exception("%s: batch failed; retrying in %.0f s", name, interval)
                done = 0
            if done:
                after()
                continue
            if self._stop.is_set():
                break
            try:
                await asyncio.wait_for(wake.wait(), interval)
            except TimeoutError:
                pass


def serve(config: Config) -> None:
    # The processor thread is CPU-bound; with the default 5 ms GIL switch interval the loop
    # answering SMTP waits behind it. 1 ms measured about 15 % more messages per second.
    sys.setswitchinterval(0.001)
    asyncio.run(Daemon(config).run())
