"""Staff notices of one ticket to several people read its history once per notify step, and say
what they said when each notice read it alone.

On a real store (SQLite and PostgreSQL, migrated), through the real pipeline; statements are
counted with SQLAlchemy's `before_cursor_execute` event on the engine.
"""

from __future__ import annotations

import email
import email.policy
import os
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, text

from gateway.config import Config, load_config
from gateway.daemon import build_pipeline
from gateway.db.engine import make_engine, upgrade
from gateway.db.rows import TicketRow
from gateway.intake.writer import enqueue_inbound
from gateway.links.tags import TagFormat
from gateway.notify import Notifier
from gateway.process import Processor
from gateway.templating import MailTemplates
from gateway.tickets import notices
from gateway.tickets.actions import by_number
from gateway.tickets.events import StaffNotice
from tests.harness import REPO, Database

AGENTS = ["eva@telenta.example", "karin@telenta.example", "lena@telenta.example"]
CONFIG = f"""\
tickets: {{language: en, detect_language: false, first_number: 300000}}
agents:
- {{name: Eva Lind, address: {AGENTS[0]}, departments: [fire-national], role: agent}}
- {{name: Karin Brand, address: {AGENTS[1]}, departments: [fire-national], role: agent, language: sv,
   timezone: America/New_York}}
- {{name: Lena Lead, address: {AGENTS[2]}, departments: [fire-national], role: agent}}
scheduler: {{enabled: false}}
"""
# The history is one statement: the latest messages with their files joined on; the files are
# no longer read apart by message ids.
HISTORY = "LEFT OUTER JOIN messageattachment"
FILES = "WHERE messageattachment.message_id IN"


@pytest.fixture
def db(backend: Database, tmp_path: Path) -> Iterator[Database]:
    fresh = Database(backend.kind, tmp_path)
    yield fresh
    fresh.drop()


def _config(db: Database, folder: Path) -> Config:
    (folder / "postdesk.yaml").write_text(CONFIG)
    environ = {"POSTDESK_DATABASE__URL": db.url, "POSTDESK_SECRET": "reads-secret",
               "POSTDESK_STORE_DIR": str(folder / "store"), "POSTDESK_ADMIN_ADDRESS": "admin@telenta-it.example"}
    previous = Path.cwd()
    os.chdir(REPO)  # templates and rules are found relative to the project, as the daemon finds them
    try:
        return load_config(folder / "postdesk.yaml", environ=environ)
    finally:
        os.chdir(previous)


def _mail(sender: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@telenta.example", "Brandlarmet tjuter"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@customer.example>"
    msg.set_content("Hello, the fire alarm keeps ringing in the building.\n")
    msg.add_attachment(b"%PDF-1.4 alarm log\n" * 40, maintype="application", subtype="pdf", filename="alarm.pdf")
    msg.add_attachment(b"\xff\xd8\xff\xe0 panel" * 30, maintype="image", subtype="jpeg", filename="panel.jpg")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


class Statements:
    """Every statement the engine runs while counting."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[str] = []
        event.listen(engine, "before_cursor_execute", self.count)

    def count(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        self.seen.append(statement)

    def of(self, start: str) -> int:
        return sum(1 for statement in self.seen if start in statement)


def _notifier(config: Config) -> Notifier:
    return Notifier(config, MailTemplates(REPO / config.templates_dir), TagFormat(config.tickets.tag_format))


def _bodies(conn: Connection, ticket: TicketRow) -> dict[str, str]:
    rows = conn.execute(text("SELECT rcpt_to, raw FROM outbox WHERE ticket_id = :t AND kind = 'staff:again'"),
                        {"t": ticket.id})
    return {to: email.message_from_bytes(raw, policy=email.policy.default).get_body().get_content()  # type: ignore[union-attr]
            for to, raw in rows}


def _opened(engine: Engine, config: Config, statements: Statements) -> TicketRow:
    """A new ticket through the pipeline, its notices counted."""
    enqueue_inbound(engine, [{"source": "smtp", "mail_from": "anna@customer.example",
                              "rcpt_to": "support@telenta.example", "raw": _mail("anna@customer.example")}])
    statements.seen.clear()
    Processor(engine, build_pipeline(config), "reads-once").run_batch()
    with engine.connect() as conn:
        number = conn.execute(text("SELECT number FROM ticket")).scalar_one()
        return by_number(conn, number)


@pytest.fixture
def desk(db: Database, tmp_path: Path) -> Iterator[tuple[Engine, Config, Statements, TicketRow]]:
    """A migrated store, its statements counted, holding one new ticket the pipeline opened."""
    config = _config(db, tmp_path)
    engine = make_engine(config.database.url)
    upgrade(engine)
    statements = Statements(engine)
    yield engine, config, statements, _opened(engine, config, statements)
    engine.dispose()


def test_the_pipelines_notices_of_a_new_ticket_read_its_history_once(
        desk: tuple[Engine, Config, Statements, TicketRow]) -> None:
    engine, _, statements, _ = desk
    with engine.connect() as conn:
        notified = {to for (to,) in conn.execute(text("SELECT rcpt_to FROM outbox WHERE kind = 'staff:new_ticket'"))}
    assert notified >= set(AGENTS), "each agent of the department has the new ticket's notice"
    assert (statements.of(HISTORY), statements.of(FILES)) == (1, 0), "the pipeline's notify step read it once"


def test_notices_read_once_quote_the_history_each_notice_read_alone(
        desk: tuple[Engine, Config, Statements, TicketRow]) -> None:
    engine, config, statements, ticket = desk
    notifier, count = _notifier(config), config.agent_mail.history_messages
    with engine.connect() as conn:
        # Each notice alone (outside a notify step): what every notice read before, one by one.
        alone = {to: notices.history(conn, ticket, count, config.web.base_url, *notifier.staff_reader(to))
                 for to in AGENTS}
        for to in AGENTS:
            notifier.staff_notice(conn, ticket, to, "again", "Look again.")
        before = _bodies(conn, ticket)
        conn.rollback()
        statements.seen.clear()
        notifier.send(conn, [StaffNotice(ticket, to, "again", "Look again.") for to in AGENTS])
        assert (statements.of(HISTORY), statements.of(FILES)) == (1, 0), "one step: one read for three notices"
        assert _bodies(conn, ticket) == before, "the notices are byte for byte what they were"
        with notices.reading_once(conn):
            assert {to: notices.history(conn, ticket, count, config.web.base_url, *notifier.staff_reader(to))
                    for to in AGENTS} == alone
        conn.rollback()
    assert len(before) == 3 and all("Look again." in body for body in before.values())
    assert alone[AGENTS[0]] == alone[AGENTS[2]] != alone[AGENTS[1]], "Karin reads it in Swedish, in her zone"
    # One message with two files: quoted once, with both files in the order they came.
    assert len(alone[AGENTS[0]]) == 1, alone[AGENTS[0]]
    assert [f["name"] for f in alone[AGENTS[0]][0]["files"]] == ["alarm.pdf", "panel.jpg"], "files quoted with it"


def test_nothing_read_crosses_from_one_notify_step_into_the_next(
        desk: tuple[Engine, Config, Statements, TicketRow]) -> None:
    engine, config, statements, ticket = desk
    notifier = _notifier(config)
    statements.seen.clear()
    with engine.connect() as conn:
        notifier.send(conn, [StaffNotice(ticket, AGENTS[0], "again", "Once more.")])
        notifier.send(conn, [StaffNotice(ticket, AGENTS[1], "again", "Once more.")])
        assert notices._READS not in conn.info, "the step's reads leave the (pooled) connection with it"
        conn.rollback()
    assert statements.of(HISTORY) == 2
