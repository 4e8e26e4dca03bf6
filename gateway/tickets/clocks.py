"""A stored ticket's SLA clocks: its event log read back, its plan and calendar from the config.

Nothing here is stored: clocks are recomputed from `ticketevent` every time, so they survive
restarts and can never drift from what happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, select

from gateway.config import Config
from gateway.db.rows import TicketRow
from gateway.db.tables import EVENT
from gateway.tickets import store
from gateway.tickets.calendar import BusinessCalendar
from gateway.tickets.lifecycle import Event, Status
from gateway.tickets.sla import Clocks, SlaPlan, compute_clocks

_EVENTS = select(EVENT).where(EVENT.c.ticket_id == bindparam("tid")).order_by(EVENT.c.at, EVENT.c.id)


def plan_for(config: Config, name: str | None) -> tuple[SlaPlan, BusinessCalendar]:
    """The named plan (the default one for unknown names) and its calendar."""
    name = name if name in config.sla.plans else config.sla.default_plan
    key = (id(config), name)
    if key not in _PLANS:
        _PLANS[key] = _plan(config, name)
    return _PLANS[key]


# Plans are built once per config object (a reload makes a new one); Config holds dicts, so it
# cannot key an lru_cache itself.
_PLANS: dict[tuple[int, str], tuple[SlaPlan, BusinessCalendar]] = {}


def _plan(config: Config, name: str) -> tuple[SlaPlan, BusinessCalendar]:
    raw = config.sla.plans[name]

    def minutes(value: int | None) -> timedelta | None:
        return None if value is None else timedelta(minutes=value)

    plan = SlaPlan(name=name, assign=minutes(raw.assign), first_response=minutes(raw.first_response),
                   resolution=minutes(raw.resolution), warn_before=timedelta(minutes=raw.warn_before),
                   calendar=raw.calendar)
    if raw.calendar == "always":
        calendar = BusinessCalendar.always()
    else:
        calendar = BusinessCalendar.from_config(raw.calendar, config.sla.calendars[raw.calendar])
    return plan, calendar


def events(conn: Connection, ticket_id: int) -> list[Event]:
    store.flush_events(conn, [ticket_id])  # a batch's events of the ticket are of its log
    found = []
    for row in conn.execute(_EVENTS, {"tid": ticket_id}):
        status = Status(row.status) if row.status else None
        if row.kind in ("created", "status") and status is None:
            continue
        found.append(Event(at=row.at, kind=row.kind, status=status, actor=row.actor, detail=row.detail))
    return found


def clocks(conn: Connection, config: Config, ticket: TicketRow, now: datetime) -> Clocks:
    plan, calendar = plan_for(config, ticket.sla_plan)
    return compute_clocks(events(conn, ticket.id), plan, calendar, now)
