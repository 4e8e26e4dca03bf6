"""The set-based batch: one bad item still ends in quarantine alone, and the rows are the item path's.

A real `Processor` over a real database, SQLite and PostgreSQL. The poison is the database's
own: a trigger that refuses one customer's address, so the set-based run fails inside the
database and the processor must redo the claimed batch item by item.

The set-based run holds rows back (outbox, copies, events, participants) to the batch's end;
later mails of the same batch that read them back (a tag threads only for a participant, the
first reply is the first response, a rating goes to whoever resolved) and agents' commands
that are undone all or nothing must come out as they do one mail at a time.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text

from gateway.config import Config, load_config
from gateway.daemon import build_pipeline
from gateway.db.engine import make_engine, upgrade
from gateway.db.tables import CUSTOMER, EVENT, MESSAGE, TICKET
from gateway.followup import is_participant
from gateway.intake.writer import enqueue_inbound
from gateway.links.reply import reply_address
from gateway.mail.parts import Attachment as MailAttachment
from gateway.notify import Notifier
from gateway.process import Processor
from gateway.tickets import clocks, store
from tests.harness import REPO, Database, make_mail

POISON_SQLITE = """CREATE TRIGGER poison BEFORE INSERT ON customer WHEN NEW.email LIKE 'poison-%'
BEGIN SELECT RAISE(ABORT, 'poisoned customer'); END"""
POISON_PG = ["""CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN
  IF NEW.email LIKE 'poison-%' THEN RAISE EXCEPTION 'poisoned customer'; END IF; RETURN NEW; END $$
  LANGUAGE plpgsql""", "CREATE TRIGGER poison BEFORE INSERT ON customer FOR EACH ROW EXECUTE FUNCTION poison()"]


def _processor(db: Database, folder: Path, batch_size: int) -> Processor:
    environ = {"POSTDESK_DATABASE__URL": db.url, "POSTDESK_SECRET": "batch-secret",
               "POSTDESK_STORE_DIR": str(folder / "store"), "POSTDESK_ADMIN_ADDRESS": "admin@telenta-it.example",
               "POSTDESK_PROCESSOR__BATCH_SIZE": str(batch_size)}
    previous = Path.cwd()
    os.chdir(REPO)  # templates and rules are found relative to the project, as the daemon finds them
    try:
        config = load_config(REPO / "config" / "postdesk.yaml", environ=environ)
        engine = make_engine(config.database.url)
        upgrade(engine)
        return Processor(engine, build_pipeline(config), f"batch-{batch_size}")
    finally:
        os.chdir(previous)


@pytest.fixture
def db(request: pytest.FixtureRequest, backend: Database, tmp_path: Path) -> Iterator[Database]:
    """A second fresh database of the module's kind (the `backend` fixture decides which)."""
    fresh = Database(backend.kind, tmp_path)
    yield fresh
    fresh.drop()


def _queue(engine: Engine, mails: list[tuple[str, bytes]]) -> list[int]:
    return enqueue_inbound(engine, [{"source": "smtp", "mail_from": sender, "rcpt_to": "support@telenta.example",
                                     "raw": raw} for sender, raw in mails])


def _poison(engine: Engine) -> None:
    with engine.begin() as conn:
        for statement in [POISON_SQLITE] if engine.dialect.name == "sqlite" else POISON_PG:
            conn.execute(text(statement))


def test_one_poisoned_item_is_quarantined_alone_and_the_rest_of_its_batch_commits(
        db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    processor = _processor(db, tmp_path, batch_size=64)
    try:
        _poison(processor.engine)
        with caplog.at_level(logging.INFO, logger="gateway.process"):
            _poisoned_batch(processor, db)
        # The set-based run was tried first, and given up for the item-by-item run.
        assert [r for r in caplog.records if "batch of 8 again item by item" in r.getMessage()]
    finally:
        processor.engine.dispose()


def _poisoned_batch(processor: Processor, db: Database) -> None:
    senders = [f"batch-{i}-{uuid.uuid4().hex[:6]}@kund.example" for i in range(7)]
    senders.insert(3, f"poison-{uuid.uuid4().hex[:6]}@kund.example")
    ids = _queue(processor.engine, [(s, make_mail(sender=s, subject=f"Larm {i}")) for i, s in enumerate(senders)])
    # One claim takes all eight; the set-based run fails and the same batch is redone item by item.
    assert processor.run_batch() == 8
    assert processor._alone == 0  # never fell back to taking the next ones one at a time
    states = dict(db.rows("SELECT id, state FROM inbound"))
    assert [states[i] for i in ids] == ["done"] * 3 + ["quarantined"] + ["done"] * 4
    [(inbound_id, stage, reason)] = db.rows("SELECT inbound_id, stage, reason FROM quarantine")
    assert (inbound_id, stage) == (ids[3], "create") and "poisoned customer" in reason
    confirmed = [row[0] for row in db.rows("SELECT rcpt_to FROM outbox WHERE kind = 'confirmation' ORDER BY id")]
    assert confirmed == [s for s in senders if not s.startswith("poison-")]
    assert db.scalar("SELECT count(*) FROM ticket") == 7
    # Numbers follow ids, in both ways of writing a ticket; the ids the failed set-based run had
    # taken are used again by the item-by-item run, so the numbers start at the first one.
    first = processor.pipeline.config.tickets.first_number
    assert db.rows("SELECT DISTINCT number - id FROM ticket") == [(first - 1,)]
    assert [n for (n,) in db.rows("SELECT number FROM ticket ORDER BY id")] == list(range(first, first + 7))
    assert processor.run_batch() == 0


Mails = list[tuple[str, bytes]]


def _mails(config: Config) -> Mails:
    """New tickets, a customer's second ticket, and a reply to a mail of the same batch."""
    first = f"<first-{uuid.uuid4().hex}@kund.example>"
    mails = [("anna@kund.example", make_mail(sender="anna@kund.example", subject="Larmet tjuter", message_id=first))]
    mails += [(f"kund{i}@kund{i % 3}.example", make_mail(sender=f"kund{i}@kund{i % 3}.example", subject=f"Fel {i}"))
              for i in range(5)]
    mails.append(("anna@kund.example", make_mail(sender="anna@kund.example", subject="En sak till")))
    mails.append(("anna@kund.example", make_mail(sender="anna@kund.example", subject="Re: Larmet tjuter",
                                                 body="Det tjuter fortfarande.\n",
                                                 headers={"In-Reply-To": first, "References": first})))
    return mails


def _contents(db: Database) -> dict[str, Any]:
    """What the processor wrote, without ids, times and per-mail Message-IDs; ticket ids as numbers."""
    number = "(SELECT number FROM ticket t WHERE t.id = {}.ticket_id)"
    return {
        "inbound": db.rows("SELECT state, note FROM inbound ORDER BY id"),
        "ticket": db.rows("SELECT t.number, t.subject, t.status, c.email, t.department, t.priority, t.language, "
                          "t.mailbox FROM ticket t JOIN customer c ON c.id = t.customer_id ORDER BY t.number"),
        "customer": db.rows("SELECT email, name, organisation, language FROM customer ORDER BY email"),
        "message": db.rows(f"SELECT {number.format('m')}, direction, kind, author, subject, visibility, "
                           "CASE WHEN direction = 'in' THEN text ELSE '' END FROM message m "
                           "ORDER BY m.ticket_id, m.id"),
        "event": db.rows(f"SELECT {number.format('e')}, kind, status, actor, detail FROM ticketevent e "
                         "ORDER BY e.ticket_id, e.id"),
        "participant": db.rows(f"SELECT {number.format('p')}, email, role FROM participant p ORDER BY 1, 2"),
        # Each ticket's mail in the order it was queued. Across tickets, on SQLite, a batch's new
        # tickets are written before the mail that may answer one (gateway.process).
        "outbox": db.rows(f"SELECT {number.format('o')}, kind, mail_from, rcpt_to, state FROM outbox o "
                          f"ORDER BY coalesce({number.format('o')}, 0), o.id"),
        # Whole tokens: each take is one, and buckets refill by the second, so the item-by-item
        # run (the slower one) finds a few thousandths more in them; what was taken must agree.
        "budget": sorted((key.split(":")[0], round(tokens)) for key, tokens in db.rows(
            "SELECT key, tokens FROM budget")),
        "rating": db.rows(f"SELECT {number.format('r')}, agent, score, comment FROM rating r ORDER BY 1"),
    }


def _both_ways(backend: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture,
               mails: Callable[[Config], Mails]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same mails in one set-based batch of 64, and one at a time: what each wrote."""
    found = []
    for batch_size in (64, 1):  # 1: every batch is one item, run item by item in its savepoint
        db = Database(backend.kind, tmp_path)
        processor = _processor(db, tmp_path / str(batch_size), batch_size=batch_size)
        try:
            queued = _queue(processor.engine, mails(processor.pipeline.config))
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="gateway.process"):
                handled = [processor.run_batch()]
                while handled[-1]:
                    handled.append(processor.run_batch())
            if batch_size > 1:
                # One claim, run set-based and committed that way: never redone item by item.
                assert handled == [len(queued), 0]
                assert not [r for r in caplog.records if "again item by item" in r.getMessage()]
            found.append(_contents(db))
        finally:
            processor.engine.dispose()
            db.drop()
    batched, alone = found
    assert all(state == "done" for state, _ in batched["inbound"])
    for table in alone:
        assert batched[table] == alone[table], table
    return batched, alone


def test_the_set_based_path_writes_the_rows_the_item_path_writes(
        backend: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    batched, _ = _both_ways(backend, tmp_path, caplog, _mails)
    assert len(batched["ticket"]) == 7 and batched["outbox"]
    assert [kind for _, kind, *_ in batched["event"]].count("created") == 7
    assert len(batched["participant"]) == 7


AGENT = "linnea.strom@telenta.example"  # of kundtjanst in config/directory.yaml


def _agent(config: Config, number: int, body: str) -> tuple[str, bytes]:
    """An agent's mail to the reply address Postdesk gave them for ticket `number`."""
    token = reply_address(config.secret_key(), "support@telenta.example", number, AGENT, "agent")
    return AGENT, make_mail(sender=AGENT, to=token, subject=f"Re: [#{number}] ärendet", body=body)


def _read_back(config: Config) -> Mails:
    """Mails that read what earlier mails of their batch wrote: participants, the first response, a resolution."""
    first, second = config.tickets.first_number, config.tickets.first_number + 1
    opened = f"<opened-{uuid.uuid4().hex}@kund.example>"
    return [
        ("anna@kund.example", make_mail(sender="anna@kund.example", subject="Larmet tjuter")),
        # A tag threads only for a participant: Anna became one of her ticket two mails ago.
        ("anna@kund.example", make_mail(sender="anna@kund.example", subject=f"Re: [#{first}] Larmet tjuter",
                                        body="Nu tjuter det igen.\n")),
        _agent(config, first, "Hej Anna, en tekniker kommer i morgon.\n"),
        _agent(config, first, "Teknikern är på väg.\n"),  # not a first response: the one above was
        ("bertil@kund.example", make_mail(sender="bertil@kund.example", subject="Sirenen", message_id=opened)),
        _agent(config, second, "#resolve\n"),  # nobody took it: the rating goes to who resolved it
        ("bertil@kund.example", make_mail(sender="bertil@kund.example", subject=f"Re: [#{second}] Sirenen",
                                          body="5 - tack!\n", headers={"In-Reply-To": opened})),
    ]


def test_mails_of_a_batch_read_back_what_earlier_ones_held_back(
        backend: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    batched, _ = _both_ways(backend, tmp_path, caplog, _read_back)
    first, second = (row[0] for row in batched["ticket"])
    assert len(batched["ticket"]) == 2, "Anna's tagged mail went on her ticket"
    assert [row[3] for row in batched["message"] if row[0] == first and row[1] == "in"].count(
        "anna@kund.example") == 2
    assert [(n, kind) for n, kind, *_ in batched["event"]].count((first, "first_response")) == 1
    assert batched["rating"] == [(second, AGENT, 5, "tack!")]


def _undone(config: Config) -> Mails:
    """An agent's commands that fail after steps that wrote: none of them may stay."""
    number = config.tickets.first_number
    return [
        ("carl@kund.example", make_mail(sender="carl@kund.example", subject="Centralen piper")),
        # Asking a third party adds them and two events; no ticket goes back to new.
        _agent(config, number, "#cc Tredje Part <tredje@partner.example>\n#status new\n\nKan ni titta på centralen?\n"),
        # The reply reads the ticket's event log (first response?) before its command fails.
        _agent(config, number, "#status new\n\nHej Carl, vi tittar på det.\n"),
        _agent(config, number, "#take\n"),
    ]


def test_an_agents_commands_undone_in_a_batch_leave_nothing_held_back(
        backend: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    batched, _ = _both_ways(backend, tmp_path, caplog, _undone)
    assert batched["participant"] == [(batched["ticket"][0][0], "carl@kund.example", "customer")]
    kinds = [kind for _, kind, *_ in batched["event"]]
    assert kinds[0] == "created" and "third_party_asked" not in kinds and "first_response" not in kinds
    assert kinds[-2:] == ["assigned", "status"]  # the #take went through


def test_readers_of_a_ticket_in_a_batch_see_its_held_back_events_and_participants(db: Database) -> None:
    engine = make_engine(db.url)
    upgrade(engine)
    try:
        with engine.begin() as conn, store.writing_behind(conn) as buffer:
            dora = store.customer(conn, "dora@kund.example", "Dora Kund", None)
            ref = store.create_ticket(conn, first_number=1, customer_id=dora.id, subject="Larmet", actor=dora.email,
                                      mailbox="support@telenta.example", values={}, why="a test")
            store.add_participant(conn, ref.id, dora.email, "customer")
            written = select(func.count()).select_from(EVENT)
            assert conn.execute(written).scalar() == 0 and buffer.events and buffer.participants
            assert is_participant(conn, ref.id, dora.email) and not is_participant(conn, ref.id, "eve@kund.example")
            assert [event.kind for event in clocks.events(conn, ref.id)] == ["created"]
            assert conn.execute(written).scalar() == 1 and not buffer.events
    finally:
        engine.dispose()


def test_a_held_message_is_written_before_any_statement_that_could_see_it(db: Database) -> None:
    # Held with its id, a message is not in the table until a statement that reads messages
    # (by a join too, or as text) or refers to one runs: that statement finds it there.
    engine = make_engine(db.url)
    upgrade(engine)
    messages = select(func.count()).select_from(MESSAGE)
    try:
        with engine.begin() as conn, store.writing_behind(conn) as buffer:
            dora = store.customer(conn, "dora@kund.example", "Dora Kund", None)
            ref = store.create_ticket(conn, first_number=1, customer_id=dora.id, subject="Larmet", actor=dora.email,
                                      mailbox="support@telenta.example", values={}, why="a test")
            first = store.add_message(conn, ref.id, {"text": "Det tjuter."}, touch=False)
            second = store.add_message(conn, ref.id, {"text": "Fortfarande."}, touch=False)
            assert [row["id"] for row in buffer.messages] == [first, second] and second > first
            assert conn.execute(text("SELECT count(*) FROM ticket")).scalar() == 1 and not buffer.messages
            third = store.add_message(conn, ref.id, {"text": "Nu slutade det."})
            assert buffer.messages
            joined = select(func.count()).select_from(TICKET.join(MESSAGE, MESSAGE.c.ticket_id == TICKET.c.id))
            assert conn.execute(joined).scalar() == 3 and not buffer.messages
            fourth = store.add_message(conn, ref.id, {"text": "Här är bilden."})
            assert store.store_attachments(conn, fourth, [MailAttachment("bild.png", "image/png", b"png")], 1000) == []
            assert not buffer.messages
        with engine.connect() as conn:
            assert conn.execute(messages).scalar() == 4
            assert [row.id for row in conn.execute(select(MESSAGE.c.id).order_by(MESSAGE.c.id))] == [
                first, second, third, fourth]
    finally:
        engine.dispose()


@pytest.mark.parametrize("fresh_db", ["sqlite", "postgresql"], indirect=True)
def test_held_customers_and_tickets_are_what_the_store_reads_back(fresh_db: Database) -> None:
    # What the batch hands on (to the announce stage, to the next mail of the same customer)
    # before the rows are written must be what reading them back gives: defaults, NUL removed,
    # lengths cut, times as stored.
    engine = make_engine(fresh_db.url)
    upgrade(engine)
    try:
        with engine.begin() as conn, store.writing_behind(conn) as buffer:
            store.read_customers(conn, ["dora@kund.example"])
            dora = store.customer(conn, "dora@kund.example", "Dora\x00 Kund" + "x" * 300, "Kund AB")
            ref = store.create_ticket(conn, first_number=5000, customer_id=dora.id, subject="Larm\x00et",
                                      actor=dora.email, mailbox="support@telenta.example",
                                      values={"department": "kundtjanst", "tags": "a" * 1200}, why="a test")
            assert buffer.new_customers and buffer.new_tickets, "held, not written"
            assert store.customer(conn, "dora@kund.example", "Dora", None) is dora
            held_customer, held_ticket = dict(vars(dora)), dict(vars(ref.row))
            store.flush_behind(conn)
            stored_customer = conn.execute(select(CUSTOMER).where(CUSTOMER.c.id == dora.id)).one()._asdict()
            stored_ticket = store.load(conn, ref.id)._asdict()
        assert held_customer == stored_customer
        assert held_ticket == stored_ticket
        assert (ref.number, stored_ticket["number"]) == (5000 + ref.id - 1,) * 2
    finally:
        engine.dispose()


def _copies(config: Config) -> Mails:
    """Copies of one mail in one batch (an MTA's retry, a second MX), between other mail."""
    twice = make_mail(sender="dora@kund.example", subject="Dubbelt levererat")
    return [
        ("dora@kund.example", twice),
        ("erik@kund.example", make_mail(sender="erik@kund.example", subject="Annat ärende")),
        ("dora@kund.example", b"Received: from mx2.kund.example by us; Mon, 2 Mar 2026 10:00:00 +0000\r\n" + twice),
        ("dora@kund.example", twice),
    ]


def test_copies_of_one_mail_in_one_batch_are_stored_once(
        backend: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The batch reads at its start which Message-IDs are stored; the first copy must not let the
    # later ones take that answer as theirs.
    batched, _ = _both_ways(backend, tmp_path, caplog, _copies)
    assert len(batched["ticket"]) == 2
    assert [note for _, note in batched["inbound"]].count("duplicate delivery: already stored") == 2


def _one_recipient(config: Config) -> Mails:
    """A new customer's three new tickets in one batch: three confirmations from one budget."""
    return [("frida@kund.example", make_mail(sender="frida@kund.example", subject=f"Ärende {n}")) for n in (1, 2, 3)]


def test_a_new_recipients_budget_made_in_a_batch_is_taken_by_its_later_mails(
        backend: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # On SQLite the bucket is made with the batch's writes; the second mail must find it made.
    batched, _ = _both_ways(backend, tmp_path, caplog, _one_recipient)
    assert ("rcpt", 2) in batched["budget"], "three of its five tokens taken, as one mail at a time takes them"
    assert [kind for _, kind, *_ in batched["outbox"]].count("confirmation") == 3


def test_new_tickets_of_a_batch_are_not_looked_up_one_by_one(db: Database, tmp_path: Path) -> None:
    # The batch asks once which of its Message-IDs are stored, and each new ticket is announced
    # from the row its insert gave back: no mail runs the earlier-copies join or reads its
    # ticket again, no message row is written on its own, and (SQLite) no new recipient's budget
    # bucket is inserted on its own.
    processor = _processor(db, tmp_path, batch_size=64)
    seen = _statements(processor)
    try:
        _queue(processor.engine, [(f"kund{n}@kund.example", make_mail(sender=f"kund{n}@kund.example",
                                                                       subject=f"Ärende {n}")) for n in range(4)])
        assert processor.run_batch() == 4
        with processor.engine.connect() as conn:
            announced = conn.execute(text("SELECT count(*) FROM outbox WHERE kind = 'staff:new_ticket'")).scalar_one()
    finally:
        processor.engine.dispose()
    assert announced >= 4, "every new ticket was announced to its department"
    assert sum("LEFT OUTER JOIN inbound ON inbound.id = message.inbound_id" in s for s in seen) == 0
    assert sum("SELECT DISTINCT message.message_id" in s for s in seen) == 1
    assert sum("FROM ticket \nWHERE ticket.id = " in s for s in seen) == 0
    # The four mails and their four confirmations' copies are message rows held with their ids:
    # written with one statement each set of columns, not one per mail.
    assert sum(s.startswith("INSERT INTO message ") for s in seen) == 2
    # New customers and tickets are held with their ids too (PostgreSQL: from their sequences).
    assert sum(s.startswith("INSERT INTO ticket ") for s in seen) == 1
    assert sum(s.startswith("INSERT INTO customer ") for s in seen) == 1
    # So are the new recipients' budget buckets: one insert for the batch, none per mail.
    assert sum(s.startswith("INSERT INTO budget") and "ON CONFLICT" in s for s in seen) == 0
    assert sum(s.startswith("INSERT INTO budget") for s in seen) == 1


def test_ticket_numbers_run_on_from_batch_to_batch(db: Database, tmp_path: Path) -> None:
    # A batch takes ids for as many tickets as it has mails; what a reply in it leaves unused
    # numbers the next batch's first ticket: no gap for a supervisor to wonder about.
    processor = _processor(db, tmp_path, batch_size=64)
    first = f"<first-{uuid.uuid4().hex}@kund.example>"
    try:
        _queue(processor.engine, [
            ("anna@kund.example", make_mail(sender="anna@kund.example", subject="Larmet tjuter", message_id=first)),
            ("bo@kund.example", make_mail(sender="bo@kund.example", subject="Dörren")),
            ("anna@kund.example", make_mail(sender="anna@kund.example", subject="Re: Larmet tjuter",
                                            headers={"In-Reply-To": first, "References": first})),
        ])
        assert processor.run_batch() == 3
        _queue(processor.engine, [("cia@kund.example", make_mail(sender="cia@kund.example", subject="Grinden"))])
        assert processor.run_batch() == 1
        numbers = [number for (number,) in db.rows("SELECT number FROM ticket ORDER BY number")]
    finally:
        processor.engine.dispose()
    first_number = processor.pipeline.config.tickets.first_number
    assert numbers == [first_number, first_number + 1, first_number + 2]


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_a_batch_holds_its_message_ids_until_it_commits(fresh_db: Database) -> None:
    # Two daemons with copies of one mail take turns: the second waits for the first's commit.
    from sqlalchemy.exc import OperationalError

    from gateway.copies import hold_message_ids

    engine = make_engine(fresh_db.url)
    try:
        with engine.connect() as first, engine.connect() as second:
            first.begin()
            hold_message_ids(first, ["<a@kund.example>", "<b@kund.example>", "<b@kund.example>", ""])
            held = first.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                      "AND pid = pg_backend_pid()")).scalar_one()
            assert held == 2, "each Message-ID of the batch once"
            second.begin()
            second.execute(text("SET LOCAL lock_timeout = '100ms'"))
            hold_message_ids(second, ["<c@kund.example>"])  # another mail: no waiting
            with pytest.raises(OperationalError, match="lock timeout"):
                hold_message_ids(second, ["<b@kund.example>"])
            second.rollback()
            first.commit()
            second.begin()
            second.execute(text("SET LOCAL lock_timeout = '100ms'"))
            hold_message_ids(second, ["<b@kund.example>"])  # free once the first batch committed
            second.rollback()
    finally:
        engine.dispose()


def test_a_new_tickets_kept_history_is_what_the_store_holds(db: Database, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The notices of a ticket the batch opened quote its first message without reading it back;
    # what they quote must be what the store holds once the batch commits, a NUL the store drops
    # included. One mail with a file is read back, as its files are only in the store.
    from gateway.tickets import notices

    quoted: dict[int, list[tuple[Any, ...]]] = {}
    stored = notices._stored

    def recording(conn: Any, ticket_id: int, count: int) -> Any:
        rows = stored(conn, ticket_id, count)
        quoted[ticket_id] = [tuple(row) for row in rows]
        return rows

    monkeypatch.setattr(notices, "_stored", recording)
    processor = _processor(db, tmp_path, batch_size=64)
    seen = _statements(processor)
    with_file = make_mail(sender="gustav@kund.example", subject="Med bilaga")
    from email import message_from_bytes, policy
    message = message_from_bytes(with_file, policy=policy.default)
    message.add_attachment(b"%PDF-1.4 larmlogg\n", maintype="application", subtype="pdf", filename="logg.pdf")
    mails = [(f"kund{n}@kund.example", make_mail(sender=f"kund{n}@kund.example", subject=f"Ärende {n}",
                                                 body=f"Larmet tjuter\x00 i zon {n}.\n" if n == 2 else
                                                 f"Larmet tjuter i zon {n}.\n")) for n in range(3)]
    mails.append(("gustav@kund.example", message.as_bytes(policy=message.policy.clone(linesep="\r\n"))))
    try:
        _queue(processor.engine, mails)
        assert processor.run_batch() == 4
        history_reads = sum("LEFT OUTER JOIN messageattachment" in s for s in seen)
        with processor.engine.connect() as conn:
            for ticket_id, rows in quoted.items():
                assert rows, "every new ticket's notice quotes its first message"
                assert rows == [tuple(row) for row in conn.execute(notices._HISTORY, {"tid": ticket_id, "n": 3})]
    finally:
        processor.engine.dispose()
    assert len(quoted) == 4
    assert history_reads == 1, "read back: the mail with a file (the one with a NUL is kept as stored)"


def _statements(processor: Processor) -> list[str]:
    """What the processor sends from now on, under the write lock and (SQLite) on its snapshots."""
    seen: list[str] = []
    for engine in (processor.engine, processor.snapshots):
        if engine is not None:
            event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_known_customers_of_a_batch_are_read_once_for_all(db: Database, tmp_path: Path) -> None:
    # Their second tickets: the batch reads the four customers in one statement, and no mail
    # tries to register its sender again or looks the sender up on its own.
    processor = _processor(db, tmp_path, batch_size=64)
    senders = [f"kund{n}@kund.example" for n in range(4)]
    try:
        _queue(processor.engine, [(s, make_mail(sender=s, subject="Första ärendet")) for s in senders])
        assert processor.run_batch() == 4
        seen = _statements(processor)
        _queue(processor.engine, [(s, make_mail(sender=s, subject="Andra ärendet")) for s in senders])
        assert processor.run_batch() == 4
    finally:
        processor.engine.dispose()
    assert db.rows("SELECT c.email, count(*) FROM ticket t JOIN customer c ON c.id = t.customer_id "
                   "GROUP BY c.email ORDER BY 1") == [(s, 2) for s in senders]
    assert sum(s.startswith("INSERT INTO customer") for s in seen) == 0
    assert sum("FROM customer" in s for s in seen) == 1
    # Each confirmation took a token from its recipient's bucket, made by the first batch: what
    # was taken is written with the batch, one statement for the four, and no bucket is read alone.
    assert sum(s.startswith("UPDATE budget") for s in seen) == 1
    assert sum("FROM budget" in s for s in seen) == 1
    capacity = processor.pipeline.config.guard.per_recipient.capacity
    assert [(key, round(tokens)) for key, tokens in db.rows("SELECT key, tokens FROM budget WHERE key LIKE 'rcpt:%' "
                                                            "ORDER BY key")] == [
        (f"rcpt:{s}", round(capacity - 2)) for s in senders]


def test_new_customers_languages_are_detected_for_the_whole_batch(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One call for the batch, spread over Lingua's threads; no mail of it detects on its own.
    from gateway.i18n import detect as detection
    from gateway.stages import create

    def one_by_one(text: str) -> str | None:
        raise AssertionError("a mail of a set-based batch detected its language on its own")

    monkeypatch.setattr(create, "detect", one_by_one)
    calls: list[int] = []
    many = detection.detect_many
    monkeypatch.setattr("gateway.stages.customers.detect_many", lambda texts: calls.append(len(texts)) or many(texts))
    words = {"sv": "Hej! Larmet i vårt kontor tjuter hela tiden sedan i går kväll och vi kan inte stänga av det.",
             "ro": "Bună ziua! Alarma din biroul nostru sună încontinuu de aseară și nu reușim să o oprim deloc.",
             "en": "Hello! The alarm in our office has been ringing all the time since last night and we cannot stop it."}
    processor = _processor(db, tmp_path, batch_size=64)
    try:
        _queue(processor.engine, [(f"{lang}@kund.example", make_mail(sender=f"{lang}@kund.example",
                                                                     subject="Larm", body=text + "\n"))
                                  for lang, text in words.items()])
        assert processor.run_batch() == 3
    finally:
        processor.engine.dispose()
    assert calls == [3]
    assert db.rows("SELECT c.email, t.language FROM ticket t JOIN customer c ON c.id = t.customer_id "
                   "ORDER BY 1") == sorted((f"{lang}@kund.example", lang) for lang in words)


def _raced(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
           where: Any, name: str, meanwhile: str, first: list[str] | None = None) -> None:
    """Mail from race@ and lugn@ in one batch (after one from each of `first`, alone); right
    after `where.name` read ahead for it, another daemon's transaction runs `meanwhile` and
    commits. The batch must be run again: on PostgreSQL item by item, as its held insert fails;
    on SQLite, where it read on a snapshot, under the write lock, as one of its reads changed."""
    processor = _processor(db, tmp_path, batch_size=64)
    other = make_engine(db.url)
    original = getattr(where, name)

    def raced(*args: Any) -> Any:
        found = original(*args)
        with other.begin() as elsewhere:
            elsewhere.execute(text(meanwhile))
        monkeypatch.setattr(where, name, original)  # once: the rerun reads as it is
        return found

    try:
        for sender in first or []:
            _queue(processor.engine, [(sender, make_mail(sender=sender, subject="Första larmet"))])
            assert processor.run_batch() == 1
        monkeypatch.setattr(where, name, raced)
        _queue(processor.engine, [(s, make_mail(sender=s, subject=f"Larm från {s}"))
                                  for s in ("race@kund.example", "lugn@kund.example")])
        with caplog.at_level(logging.DEBUG, logger="gateway.process"):
            assert processor.run_batch() == 2
        rerun = "again item by item" if db.kind == "postgresql" else "read(s) changed since its snapshot"
        assert [r for r in caplog.records if rerun in r.getMessage()]
        assert db.rows("SELECT state FROM inbound ORDER BY id")[-2:] == [("done",), ("done",)]
    finally:
        processor.engine.dispose()
        other.dispose()


@pytest.mark.parametrize("fresh_db", ["sqlite", "postgresql"], indirect=True)
def test_a_new_customer_another_daemon_adds_meanwhile_costs_the_batch_a_rerun_not_a_mail(
        fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # The batch read that nobody wrote from this address and holds a new customer row; before
    # it commits, another daemon's batch adds that customer. The held row's insert must fail
    # this batch, and its item-by-item run take the customer that is there: one customer, both
    # mails on tickets of theirs.
    _raced(fresh_db, tmp_path, monkeypatch, caplog, store, "read_customers",
           "INSERT INTO customer (email, name, notifications_off, created_at) "
           "VALUES ('race@kund.example', 'Race', false, CURRENT_TIMESTAMP)")
    assert fresh_db.rows("SELECT c.email, c.name FROM ticket t JOIN customer c ON c.id = t.customer_id "
                         "ORDER BY t.id") == [("race@kund.example", "Race"), ("lugn@kund.example", "")]


@pytest.mark.parametrize("fresh_db", ["sqlite", "postgresql"], indirect=True)
def test_a_recipients_budget_another_daemon_makes_meanwhile_is_the_one_taken_from(
        fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # The batch read that a new recipient has no budget bucket and holds a full one less this
    # confirmation; before it commits, another daemon makes that bucket with two tokens left.
    # The batch must not write its own over it: its rerun takes the confirmation from the two.
    from gateway.stages import budgets

    _raced(fresh_db, tmp_path, monkeypatch, caplog, budgets, "read_ahead",
           "INSERT INTO budget (key, tokens, updated_at) VALUES ('rcpt:race@kund.example', 2, CURRENT_TIMESTAMP)")
    [(tokens,)] = fresh_db.rows("SELECT tokens FROM budget WHERE key = 'rcpt:race@kund.example'")
    assert 0.99 < tokens < 1.01, "one token taken from the two the other daemon left"
    assert fresh_db.rows("SELECT rcpt_to FROM outbox WHERE kind = 'confirmation' ORDER BY id") == [
        ("race@kund.example",), ("lugn@kund.example",)]


@pytest.mark.parametrize("fresh_db", ["sqlite"], indirect=True)
def test_what_another_writer_took_from_a_bucket_meanwhile_is_not_written_over(
        fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # SQLite: the batch reads race@'s bucket on a snapshot and holds what its confirmation
    # leaves in it; before the batch has the write lock, another writer takes all but two
    # tokens. No key is violated by writing the held value over that: only the batch's check
    # of its reads under the lock can see it, and its rerun must take from the two.
    from gateway.stages import budgets

    _raced(fresh_db, tmp_path, monkeypatch, caplog, budgets, "read_ahead",
           "UPDATE budget SET tokens = 2 WHERE key = 'rcpt:race@kund.example'", first=["race@kund.example"])
    [(tokens,)] = fresh_db.rows("SELECT tokens FROM budget WHERE key = 'rcpt:race@kund.example'")
    assert 0.99 < tokens < 1.01, "one token taken from the two the other writer left"


def _intake_meanwhile(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, senders: list[str],
                      replies: list[str]) -> tuple[list[int], int]:
    """One batch: a reply from each of `replies` to their tickets, then a new mail from each of
    `senders`. While the batch has its confirmations rendered, intake commits a mail without
    waiting at all (busy_timeout 0); that fails while anything holds the write lock. Returns
    the batch's inbound ids and the late mail's, after a second batch has taken that."""
    processor = _processor(db, tmp_path, batch_size=64)
    intake = make_engine(db.url)
    event.listen(intake, "connect", lambda dbapi_connection, _record: dbapi_connection.execute("PRAGMA busy_timeout=0"))
    committed: list[list[int]] = []
    send = Notifier.send

    def sending(self: Notifier, *args: Any) -> Any:
        if not committed:
            committed.append(_queue(intake, [("ny@kund.example", make_mail(sender="ny@kund.example", subject="Ny"))]))
        return send(self, *args)

    try:
        for sender in replies:  # their tickets, opened first
            _queue(processor.engine, [(sender, make_mail(sender=sender, subject="Larmet tjuter"))])
            assert processor.run_batch() == 1
        numbers = [number for (number,) in db.rows("SELECT number FROM ticket ORDER BY id")]
        monkeypatch.setattr(Notifier, "send", sending)
        queued = _queue(processor.engine, [
            *((s, make_mail(sender=s, subject=f"Re: [#{n}] Larmet tjuter", body="Nu igen.\n"))
              for s, n in zip(replies, numbers, strict=True)),
            *((s, make_mail(sender=s, subject="Larm")) for s in senders)])
        assert processor.run_batch() == len(queued)
        monkeypatch.setattr(Notifier, "send", send)
        [[late]] = committed
        assert db.rows(f"SELECT id, state FROM inbound WHERE id >= {queued[0]} ORDER BY id") == [
            *((i, "done") for i in queued), (late, "queued")]
        assert processor.run_batch() == 1
    finally:
        processor.engine.dispose()
        intake.dispose()
    return queued, late


def _opened(db: Database) -> list[tuple[str, int]]:
    """Each ticket's customer and its number of inbound messages, in the order of the numbers."""
    return db.rows("SELECT c.email, count(m.id) FROM ticket t JOIN customer c ON c.id = t.customer_id "
                   "JOIN message m ON m.ticket_id = t.id AND m.direction = 'in' GROUP BY t.number, c.email "
                   "ORDER BY t.number")


def _confirmed(db: Database) -> list[str]:
    return [rcpt for (rcpt,) in db.rows("SELECT rcpt_to FROM outbox WHERE kind = 'confirmation' ORDER BY id")]


@pytest.mark.parametrize("fresh_db", ["sqlite"], indirect=True)
def test_intake_commits_while_a_sqlite_batch_routes_and_writes_its_mail(
        fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The batch's stages run on a read snapshot, not under the one write lock: a mail handed
    # to intake while the batch renders its confirmations is committed at once, and the batch
    # still commits as one.
    senders = [f"kund{i}@kund.example" for i in range(4)]
    queued, late = _intake_meanwhile(fresh_db, tmp_path, monkeypatch, senders, [])
    assert len(queued) == 4 and late > max(queued)
    assert _opened(fresh_db) == [(s, 1) for s in [*senders, "ny@kund.example"]]
    assert _confirmed(fresh_db) == [*senders, "ny@kund.example"]


@pytest.mark.parametrize("fresh_db", ["sqlite"], indirect=True)
def test_a_batchs_replies_do_not_cost_its_new_mail_the_snapshot(
        fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A reply updates its ticket at once, which the snapshot refuses. The batch's new mail runs
    # on the snapshot apart from it, first (intake still commits meanwhile), and the replies
    # under the lock after it: each on its own ticket.
    senders = ["kund1@kund.example", "kund2@kund.example"]
    _intake_meanwhile(fresh_db, tmp_path, monkeypatch, senders, ["anna@kund.example"])
    assert _opened(fresh_db) == [("anna@kund.example", 2), *((s, 1) for s in senders), ("ny@kund.example", 1)]
    assert _confirmed(fresh_db) == ["anna@kund.example", *senders, "ny@kund.example"]


@pytest.mark.parametrize("fresh_db", ["sqlite"], indirect=True)
def test_new_mail_whose_stages_must_write_at_once_runs_under_the_lock(
        fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Here every notify step writes before the batch's end (a statement that changes nothing):
    # the read-only snapshot refuses it, so the new mail runs under the lock with the reply.
    # Each item is done once; only the new mail, which the snapshot ran, is prepared again; and
    # the next batch runs under the lock at once instead of trying the snapshot again.
    processor = _processor(fresh_db, tmp_path, batch_size=64)
    try:
        _queue(processor.engine, [("anna@kund.example", make_mail(sender="anna@kund.example", subject="Larm"))])
        assert processor.run_batch() == 1
        first = processor.pipeline.config.tickets.first_number
        send, prepare, on_snapshot = Notifier.send, Processor.run_prepare, Processor._set_on_snapshot
        prepared: list[int] = []
        tried: list[int] = []

        def writing(self: Notifier, conn: Any, *args: Any) -> Any:
            conn.execute(text("UPDATE ticket SET updated_at = updated_at WHERE id = -1"))
            return send(self, conn, *args)

        def preparing(self: Processor, ctx: Any) -> Any:
            prepared.append(ctx.inbound_id)
            return prepare(self, ctx)

        def trying(self: Processor, contexts: list[Any]) -> bool:
            tried.append(len(contexts))
            return on_snapshot(self, contexts)

        monkeypatch.setattr(Notifier, "send", writing)
        monkeypatch.setattr(Processor, "run_prepare", preparing)
        monkeypatch.setattr(Processor, "_set_on_snapshot", trying)
        reply, *fresh = _queue(processor.engine, [
            ("anna@kund.example", make_mail(sender="anna@kund.example", subject=f"Re: [#{first}] Larm")),
            *((s, make_mail(sender=s, subject="Nytt larm")) for s in ("kund1@kund.example", "kund2@kund.example"))])
        assert processor.run_batch() == 3
        assert tried == [2]
        assert sorted(prepared) == sorted([reply, *fresh, *fresh])
        _queue(processor.engine, [(s, make_mail(sender=s, subject="Larm")) for s in ("kund3@kund.example",
                                                                                      "kund4@kund.example")])
        assert processor.run_batch() == 2
        assert tried == [2], "the batch after one that could not stand did not try the snapshot"
    finally:
        processor.engine.dispose()
    assert fresh_db.rows("SELECT state, count(*) FROM inbound GROUP BY state") == [("done", 6)]
    assert fresh_db.rows("SELECT c.email, count(m.id) FROM ticket t JOIN customer c ON c.id = t.customer_id "
                         "JOIN message m ON m.ticket_id = t.id AND m.direction = 'in' GROUP BY c.email "
                         "ORDER BY 1") == [("anna@kund.example", 2), *((f"kund{i}@kund.example", 1) for i in range(1, 5))]
