"""Scheduled duties: SLA warnings and escalations, stale reminders, the daily digest, auto-close, backup.

APScheduler only wakes the daemon every `scheduler.sweep_seconds`; `run_duties(now)` does the
work, and takes `now` so tests drive it with a controlled clock. Every notice is guarded by a
key in the `once` table (an escalation per ticket and target, a digest per day), so a restart,
two daemons on one PostgreSQL database or a missed tick never send anything twice; on
PostgreSQL an advisory lock also keeps a second daemon from doing the same sweep meanwhile.
Daily duties run on the first tick after their time of day, so a daemon that was down at 07:00
still sends the digest when it comes back; a desk that held no ticket yet at that time (a fresh
install) sends its first digest the next day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, text

from gateway import metrics
from gateway.clock import utcnow
from gateway.config import Config
from gateway.db.ignore import insert_ignore
from gateway.db.rows import TicketRow
from gateway.db.tables import EVENT, ONCE, TICKET
from gateway.notify import Notifier
from gateway.routing.directory import Directory
from gateway.tickets import actions, notices, store
from gateway.tickets.clocks import clocks
from gateway.tickets.events import AdminNotice, Event, Events, StaffDigest, StaffNotice
from gateway.tickets.explain import explain
from gateway.tickets.lifecycle import Status
from gateway.tickets.notices import Text

log = logging.getLogger("gateway.sla")
# The key of the advisory lock that one daemon holds while it sweeps (an arbitrary constant).
SWEEP_LOCK = 0x706F7375
# Events the notifier writes for mail a budget delayed or stopped (`Notifier.held_back`).
HELD_BACK = ("mail_deferred", "mail_held_back")
OPEN = (Status.NEW.value, Status.IN_PROGRESS.value, Status.WAITING_CUSTOMER.value, Status.WAITING_THIRD_PARTY.value)


@dataclass
class Report:
    """What one run did, for logs and tests."""

    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    stale: int = 0
    closed: int = 0
    digests: int = 0
    held_back: int = 0
    backups: list[str] = field(default_factory=list)
    skipped: bool = False


class Duties:
    def __init__(self, engine: Engine, config: Config, notifier: Notifier, directory: Callable[[], Directory]) -> None:
        self.engine = engine
        self.config = config
        self.notifier = notifier
        self.directory = directory
        # The notices of the sweep under way, per recipient: (ticket or None, event, text).
        self._outgoing: dict[str, list[tuple[TicketRow | None, str, str | Text]]] = {}

    # -- who hears of what -----------------------------------------------------------------

    def leads(self) -> list[str]:
        found = [a.address for a in self.config.staff if a.role == "lead"]
        manager = self.directory().support_manager
        return found or ([manager] if manager else []) or ([self.config.admin_address] if self.config.admin_address else [])

    def manager_of(self, department: str | None) -> list[str]:
        dept = self.directory().department(department) if department else None
        if dept is not None and dept.manager:
            return [dept.manager]
        managers = [a.address for a in self.config.staff if a.role == "manager" and department in a.departments]
        return managers or self.leads()

    # -- the run ---------------------------------------------------------------------------

    def run(self, now: datetime | None = None) -> Report:
        now = now or utcnow()
        report = Report()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql" and not conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK}).scalar():
                report.skipped = True
                return report
            self._outgoing = {}
            self.sweep_sla(conn, now, report)
            self.remind_stale(conn, now, report)
            self.auto_close(conn, now, report)
            self.digest(conn, now, report)
            self.report_held_back(conn, now, report)
            self.flush(conn)
        # Counted after the commit: a sweep that rolled back warned nobody.
        metrics.sla_warning(report.warnings)
        metrics.sla_breach(report.breaches)
        self.backup(now, report)
        if any((report.warnings, report.breaches, report.escalations, report.stale, report.closed, report.digests)):
            log.info("sweep: %d warning(s), %d breach(es), %d escalation(s), %d stale reminder(s), %d auto-closed, "
                     "%d digest(s)", report.warnings, report.breaches, report.escalations, report.stale,
                     report.closed, report.digests)
        return report

    def _notice(self, conn: Connection, key: str, ticket: TicketRow | None, to: list[str], event: str,
                body: Text) -> bool:
        """Claim the notice once; it goes out with the person's other notices of this sweep, in
        each recipient's own language and time zone."""
        if not to or not self._claim(conn, key):
            return False
        for address in to:
            self._outgoing.setdefault(address, []).append((ticket, event, body))
        return True

    def flush(self, conn: Connection) -> None:
        """One mail per person per sweep about their tickets: a lone notice as it is (it can be
        answered to work the ticket), several as one list with links. The daily digest, a report
        rather than a notice, stays a mail of its own."""
        events: list[Event] = []
        for address, items in self._outgoing.items():
            about = [(ticket, event, body) for ticket, event, body in items if ticket is not None]
            alone = [item for item in items if item[0] is None]
            if len(about) == 1:
                alone += about
            elif about:
                events.append(StaffDigest(address, about))
            events += [StaffNotice(ticket, address, event, body) for ticket, event, body in alone]
        self.notifier.send(conn, events)
        self._outgoing = {}

    def _claim(self, conn: Connection, key: str) -> bool:
        """True exactly the first time `key` is claimed, across restarts and daemons."""
        return insert_ignore(conn, ONCE, {"key": key[:400], "created_at": utcnow()}) == 1

    def sweep_sla(self, conn: Connection, now: datetime, report: Report) -> None:
        # A sweep stands at `now`: a ticket opened after it (a sweep run for a past moment, or a
        # daemon whose clock lags another's) has no clocks yet and is left to a later sweep.
        due = select(TICKET).where(TICKET.c.status.in_(OPEN), TICKET.c.created_at <= now)
        for ticket in conn.execute(due):
            for clock in clocks(conn, self.config, ticket, now).targets:
                base = f"sla:{ticket.id}:{clock.name}"
                if clock.breached:
                    if self._notice(conn, f"{base}:breach", ticket, self.manager_of(ticket.department), "SLA breached",
                                    notices.breached(ticket, clock)):
                        store.add_event(conn, ticket.id, "sla_breach", actor="postdesk", detail=explain(clock), at=now)
                        report.breaches += 1
                    late = now - (clock.breached_at or now)
                    if late >= timedelta(minutes=self.config.sla.escalate_to_lead_after) and self._notice(
                            conn, f"{base}:lead", ticket, self.leads(), "SLA breach escalated",
                            notices.escalated(ticket, clock, late)):
                        store.add_event(conn, ticket.id, "sla_escalated", actor="postdesk", detail=clock.name, at=now)
                        report.escalations += 1
                elif clock.warning:
                    to = [ticket.assignee] if ticket.assignee else self.manager_of(ticket.department)
                    if self._notice(conn, f"{base}:warn", ticket, to, "SLA warning", notices.warning(ticket, clock)):
                        store.add_event(conn, ticket.id, "sla_warning", actor="postdesk", detail=explain(clock), at=now)
                        report.warnings += 1

    def remind_stale(self, conn: Connection, now: datetime, report: Report) -> None:
        limit = now - timedelta(hours=self.config.scheduler.stale_hours)
        stale = conn.execute(select(TICKET).where(TICKET.c.status.in_((Status.NEW.value, Status.IN_PROGRESS.value)),
                                                  TICKET.c.updated_at < limit))
        day = now.date().isoformat()
        for ticket in stale:
            if self._notice(conn, f"stale:{ticket.id}:{day}", ticket, self.manager_of(ticket.department),
                            "Stale ticket", notices.stale(ticket, now - ticket.updated_at)):
                report.stale += 1

    def auto_close(self, conn: Connection, now: datetime, report: Report) -> None:
        limit = now - timedelta(days=self.config.lifecycle.auto_close_days)
        for ticket in conn.execute(select(TICKET).where(TICKET.c.status == Status.RESOLVED.value,
                                                        TICKET.c.resolved_at < limit)).all():
            events = Events(self.config)
            actions.set_status(conn, events, ticket, Status.CLOSED, actor="postdesk",
                               why=f"resolved more than {self.config.lifecycle.auto_close_days} days ago")
            self.notifier.send(conn, events.items)
            report.closed += 1

    def _due_today(self, at: str, now: datetime) -> tuple[datetime, str]:
        """When today's run of a daily duty at local time `at` falls due, and today's date, both
        in the scheduler's time zone."""
        zone = ZoneInfo(self.config.scheduler.timezone)
        local = now.astimezone(zone)
        hour, minute = (int(part) for part in at.split(":"))
        return datetime.combine(local.date(), time(hour, minute), tzinfo=zone), local.date().isoformat()

    def digest(self, conn: Connection, now: datetime, report: Report) -> None:
        due_at, day = self._due_today(self.config.scheduler.digest_time, now)
        key = f"digest:{day}"
        leads = self.leads()
        if now < due_at or not leads or conn.execute(select(ONCE.c.key).where(ONCE.c.key == key)).first():
            return
        # A late daemon catches up, but a desk that held no ticket yet when the digest fell due
        # (a fresh install started after the digest time) has had no day to report on: its
        # first digest is the next day's.
        if conn.execute(select(TICKET.c.id).where(TICKET.c.created_at <= due_at).limit(1)).first() is None:
            return
        unanswered, overdue = [], []
        answered = {row.ticket_id for row in conn.execute(select(EVENT.c.ticket_id).where(EVENT.c.kind == "first_response"))}
        for ticket in conn.execute(select(TICKET).where(TICKET.c.status.in_(OPEN)).order_by(TICKET.c.number)):
            if ticket.id not in answered:
                unanswered.append(ticket)
            if any(clock.breached for clock in clocks(conn, self.config, ticket, now).targets):
                overdue.append(ticket)
        base = self.config.web.base_url.rstrip("/")
        body = notices.digest(day, unanswered, overdue, lambda ticket: f"{base}/tickets/{ticket.number}")
        if self._notice(conn, key, None, leads, "Daily digest", body):
            report.digests += 1

    def report_held_back(self, conn: Connection, now: datetime, report: Report) -> None:
        """Tell the admin, in one mail per sweep, of every mail a budget deferred or held back."""
        if not self.config.admin_address:
            return
        since = now - timedelta(days=1)
        rows = conn.execute(select(EVENT.c.id, EVENT.c.ticket_id, EVENT.c.kind, EVENT.c.detail, TICKET.c.number)
                            .join(TICKET, TICKET.c.id == EVENT.c.ticket_id)
                            .where(EVENT.c.kind.in_(HELD_BACK), EVENT.c.at >= since).order_by(EVENT.c.id)).all()
        lines = [f"  {self.notifier.tags.tag(row.number)} {row.detail}" for row in rows
                 if self._claim(conn, f"held:{row.id}")]
        if lines:
            self.notifier.send(conn, [AdminNotice(
                f"{len(lines)} automatic mail(s) deferred or held back",
                "Mail budgets (guard:) delayed or stopped these mails; deferred ones go out by themselves when "
                "the budget allows:\n\n" + "\n".join(lines) + "\n")])
            report.held_back += len(lines)

    def backup(self, now: datetime, report: Report) -> None:
        """The day's backup (every table and the signing secret: `gateway.backup`), SQLite or PostgreSQL."""
        from gateway.backup import prune, write_backup

        due_at, day = self._due_today(self.config.scheduler.backup_time, now)
        folder = Path(self.config.store_dir) / "backups"
        target = folder / f"postdesk-{day}.tar.gz"
        if now < due_at or target.exists():
            return
        write_backup(self.config, self.engine, target, say=log.debug)
        report.backups.append(str(target))
        log.info("backup written: %s", target)
        for old in prune(folder, self.config.scheduler.backup_keep_days, now.date()):
            log.info("old backup removed: %s", old)


async def run_scheduler(duties: Duties, executor: Executor, config: Config, stop: asyncio.Event) -> None:
    """Wake `duties.run` every `sweep_seconds` with APScheduler until `stop` is set."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    loop = asyncio.get_running_loop()
    busy = asyncio.Lock()

    async def tick() -> None:
        if busy.locked():
            return  # a long sweep is still running; the next tick will catch up
        async with busy:
            try:
                await loop.run_in_executor(executor, duties.run)
            except Exception:
                log.exception("scheduled duties failed; trying again at the next tick")

    scheduler = AsyncIOScheduler(event_loop=loop)
    scheduler.add_job(tick, "interval", seconds=config.scheduler.sweep_seconds, next_run_time=datetime.now(),
                      max_instances=1, coalesce=True, id="duties")
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
