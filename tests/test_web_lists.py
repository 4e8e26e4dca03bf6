"""The ticket list of a person who sees several groups (an agent's departments and assigned
tickets, a customer who also manages an organisation) is merged from each group's newest page;
it must be exactly the page the plain OR condition gives, on every page and status filter.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from gateway.db.engine import make_engine, upgrade
from gateway.db.tables import CUSTOMER, TICKET
from gateway.web.access import Viewer, ticket_clause
from gateway.web.store import ALL, OPEN, PAGE_SIZE, ticket_list
from tests.harness import Database

STATUSES = ["new", "in_progress", "waiting_customer", "resolved", "closed"]


def _fill(engine: object, count: int) -> None:
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(insert(CUSTOMER), [{"email": f"c{i}@kund.example", "name": "", "created_at": start}
                                        for i in range(20)])
        ids = [row.id for row in conn.execute(select(CUSTOMER.c.id))]
        conn.execute(insert(TICKET), [{
            "number": 1000 + i, "subject": f"t{i}", "status": rng.choice(STATUSES), "customer_id": rng.choice(ids),
            "mailbox": "support@telenta.example", "department": rng.choice(["fire", "burglar", "orders", None]),
            "organisation": rng.choice(["Org A", "Org B", None]), "priority": "normal",
            "assignee": rng.choice(["agent@telenta.example", "other@telenta.example", None]),
            "tags": "", "fields": "{}", "created_at": start,
            # Ties on updated_at on purpose: the id must break them the same way in both plans.
            "updated_at": start + timedelta(minutes=rng.randrange(300)),
        } for i in range(count)])


@pytest.mark.parametrize("fresh_db", ["sqlite", "postgresql"], indirect=True)
def test_merged_pages_equal_the_plain_condition(fresh_db: Database) -> None:
    engine = make_engine(fresh_db.url)
    upgrade(engine)
    _fill(engine, 400)
    with engine.connect() as conn:
        customer = conn.execute(select(CUSTOMER.c.id).limit(1)).scalar()
        viewers = [
            Viewer(email="agent@telenta.example", departments=frozenset({"fire", "burglar"})),
            Viewer(email="manager@kund.example", customer_id=customer, organisations=frozenset({"Org A"})),
            Viewer(email="agent@telenta.example", departments=frozenset({"orders"}),
                   organisations=frozenset({"Org B"}), customer_id=customer),
        ]
        for viewer in viewers:
            expected_all = [row.id for row in conn.execute(
                select(TICKET.c.id, TICKET.c.status).where(ticket_clause(viewer, TICKET))
                .order_by(TICKET.c.updated_at.desc(), TICKET.c.id.desc()))]
            assert len(expected_all) > 3 * PAGE_SIZE, "the world must span several pages"
            for status in (ALL, OPEN, "resolved"):
                expected = [row.id for row in conn.execute(
                    select(TICKET.c.id).where(ticket_clause(viewer, TICKET))
                    .where(TICKET.c.status.not_in(["resolved", "closed"]) if status == OPEN
                           else (TICKET.c.status == status) if status != ALL else TICKET.c.id.isnot(None))
                    .order_by(TICKET.c.updated_at.desc(), TICKET.c.id.desc()))]
                page, shown = 1, []
                while True:
                    result = ticket_list(conn, viewer, status=status, page=page)
                    shown.extend(row.id for row in result.rows)
                    if not result.has_next:
                        break
                    page += 1
                assert shown == expected, f"{viewer.email} {status}: pages differ from the plain condition"
    engine.dispose()
