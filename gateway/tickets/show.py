"""Text views of tickets for the command line: `ticket show` with its clocks, links, messages and
history, and the feedback report.

`ticket show` is for operators: English, times in `tickets.timezone` with the zone named. Each
message is shown with its author, time, kind (a confirmation is a confirmation), its new text
(quoted history left out, as agents read it) and its attachments.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from gateway.clock import utcnow
from gateway.config import Config
from gateway.db.rows import TicketRow
from gateway.db.tables import ATTACHMENT, CUSTOMER, EVENT, MESSAGE, MESSAGE_ATTACHMENT, RATING, TICKET
from gateway.i18n.formats import size, when
from gateway.tickets import kinds
from gateway.tickets.clocks import clocks
from gateway.tickets.explain import explain, format_duration
from gateway.tickets.lifecycle import Status, display_name


def describe(conn: Connection, config: Config, ticket: TicketRow) -> str:
    now = utcnow()
    zone = config.tickets.timezone
    customer = conn.execute(select(CUSTOMER).where(CUSTOMER.c.id == ticket.customer_id)).one()
    state = clocks(conn, config, ticket, now)
    lines = [
        f"ticket {ticket.number}: {ticket.subject}",
        f"  status       {ticket.status} ({display_name(Status(ticket.status), config.tickets.language)})",
        f"  customer     {customer.name + ' ' if customer.name else ''}<{customer.email}>"
        + (f", {customer.organisation}" if customer.organisation else ""),
        f"  department   {ticket.department or '-'}   topic {ticket.topic or '-'}   priority {ticket.priority}",
        f"  assignee     {ticket.assignee or '-'}   SLA plan {ticket.sla_plan or config.sla.default_plan}",
        f"  created      {when(ticket.created_at, 'en', zone)}   last activity {when(ticket.updated_at, 'en', zone)}",
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
    lines += _links(conn, ticket)
    lines += _messages(conn, ticket, zone)
    lines.append("history:")
    for event in conn.execute(select(EVENT).where(EVENT.c.ticket_id == ticket.id).order_by(EVENT.c.at, EVENT.c.id)):
        after = f" -> {event.status}" if event.status else ""
        lines.append(f"  {event.at:%Y-%m-%d %H:%M:%S} {event.kind}{after} by {event.actor or '-'}: {event.detail[:120]}")
    return "\n".join(lines)


def _links(conn: Connection, ticket: TicketRow) -> list[str]:
    found = []
    if ticket.linked_ticket_id:
        before = conn.execute(select(TICKET.c.number, TICKET.c.subject).where(TICKET.c.id == ticket.linked_ticket_id)).first()
        if before is not None:
            found.append(f"  follows      ticket {before.number}: {before.subject}")
    for after in conn.execute(select(TICKET.c.number, TICKET.c.subject).where(TICKET.c.linked_ticket_id == ticket.id)
                              .order_by(TICKET.c.number)):
        found.append(f"  followed by  ticket {after.number}: {after.subject}")
    return (["links:"] + found) if found else []


def _messages(conn: Connection, ticket: TicketRow, zone: str, width: int = 2000) -> list[str]:
    rows = conn.execute(select(MESSAGE).where(MESSAGE.c.ticket_id == ticket.id).order_by(MESSAGE.c.created_at, MESSAGE.c.id)).all()
    files: dict[int, list[Any]] = defaultdict(list)
    if rows:
        query = (select(MESSAGE_ATTACHMENT.c.message_id, MESSAGE_ATTACHMENT.c.filename, MESSAGE_ATTACHMENT.c.content_type,
                        ATTACHMENT.c.size)
                 .join(ATTACHMENT, ATTACHMENT.c.id == MESSAGE_ATTACHMENT.c.attachment_id)
                 .where(MESSAGE_ATTACHMENT.c.message_id.in_([row.id for row in rows])).order_by(MESSAGE_ATTACHMENT.c.id))
        for item in conn.execute(query):
            files[item.message_id].append(item)
    lines = [f"messages ({len(rows)}):"]
    for row in rows:
        lines.append(f"  --- {when(row.created_at, 'en', zone)}  {kinds.label(row)}  {row.author or 'postdesk'}"
                     + (f"  ({row.visibility})" if row.visibility != "public" else ""))
        text = (row.text or "").strip() or "(no text)"
        if len(text) > width:
            text = text[:width].rstrip() + " […]"
        lines += [f"      {line}" for line in text.splitlines()]
        for item in files.get(row.id, []):
            lines.append(f"      attachment: {item.filename or '(no name)'} ({item.content_type}, {size(item.size, 'en')})")
    return lines


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
