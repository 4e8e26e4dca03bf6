"""Text views of tickets for the command line: `ticket show` with its clocks, and the feedback report."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from gateway.config import Config
from gateway.db.models import utcnow
from gateway.db.tables import CUSTOMER, EVENT, RATING
from gateway.tickets.clocks import clocks
from gateway.tickets.lifecycle import Status, display_name
from gateway.tickets.sla import explain, format_duration


def describe(conn: Connection, config: Config, ticket: Any) -> str:
    now = utcnow()
    customer = conn.execute(select(CUSTOMER).where(CUSTOMER.c.id == ticket.customer_id)).one()
    state = clocks(conn, config, ticket, now)
    lines = [
        f"ticket {ticket.number}: {ticket.subject}",
        f"  status       {ticket.status} ({display_name(Status(ticket.status), config.tickets.language)})",
        f"  customer     {customer.name + ' ' if customer.name else ''}<{customer.email}>"
        + (f", {customer.organisation}" if customer.organisation else ""),
        f"  department   {ticket.department or '-'}   topic {ticket.topic or '-'}   priority {ticket.priority}",
        f"  assignee     {ticket.assignee or '-'}   SLA plan {ticket.sla_plan or config.sla.default_plan}",
        f"  created      {ticket.created_at:%Y-%m-%d %H:%M} UTC   last activity {ticket.updated_at:%Y-%m-%d %H:%M} UTC",
    ]
    if ticket.missing_fields:
        lines.append(f"  missing      {ticket.missing_fields.replace(',', ', ')}")
    lines.append("clocks:")
    for clock in state.targets:
        flag = "BREACHED" if clock.breached else ("met" if clock.met_at else ("warning" if clock.warning else clock.state.value))
        due = f"{clock.due:%Y-%m-%d %H:%M} UTC" if clock.due else "-"
        lines.append(f"  {clock.name:<15} {flag:<9} elapsed {format_duration(clock.elapsed):>8}  "
                     f"paused {format_duration(clock.paused):>8}  due {due}")
        lines.append(f"      {explain(clock)}")
    lines.append(f"  totals: waiting for assignment {format_duration(state.waiting_for_assignment)}, "
                 f"in progress {format_duration(state.in_progress)}, to resolution {format_duration(state.to_resolution)}, "
                 f"paused {format_duration(state.paused)}")
    lines.append("history:")
    for event in conn.execute(select(EVENT).where(EVENT.c.ticket_id == ticket.id).order_by(EVENT.c.at, EVENT.c.id)):
        after = f" -> {event.status}" if event.status else ""
        lines.append(f"  {event.at:%Y-%m-%d %H:%M:%S} {event.kind}{after} by {event.actor or '-'}: {event.detail[:120]}")
    return "\n".join(lines)


def feedback_report(conn: Connection) -> str:
    per_agent: dict[str, list[Any]] = defaultdict(list)
    for rating in conn.execute(select(RATING).order_by(RATING.c.created_at)):
        per_agent[rating.agent or "(unassigned)"].append(rating)
    if not per_agent:
        return "no ratings yet"
    lines = [f"{'agent':<36} {'n':>4} {'avg':>5}   1  2  3  4  5"]
    for agent, ratings in sorted(per_agent.items(), key=lambda item: -len(item[1])):
        scores = [r.score for r in ratings]
        spread = " ".join(f"{scores.count(s):>2}" for s in range(1, 6))
        lines.append(f"{agent:<36} {len(scores):>4} {sum(scores) / len(scores):>5.2f}  {spread}")
        for rating in [r for r in ratings if r.comment][-3:]:
            lines.append(f"    {rating.score}/5: {rating.comment[:100]}")
    return "\n".join(lines)
