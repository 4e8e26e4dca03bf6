"""The processor: claimed inbound items run through named stages; a failing stage quarantines.

Stages come in two groups, after Mailman's pipelines:
- `PREPARE` (parse, classify, strip) needs no database and runs before any transaction is open;
- `APPLY` (thread, route, apply) runs inside one write transaction per batch, each item in its
  own savepoint, so that one bad message is quarantined and the rest of the batch still commits.
Marking the inbound row done happens in that same transaction, guarded by our claim token: the
ticket, its messages and its outbox rows exist exactly when the item is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.config import Config
from gateway.db.models import Customer, Message, Participant, Quarantine, Ticket, utcnow
from gateway.db.queues import INBOUND, claim_inbound
from gateway.followup import TagFormat, ThreadResult, find_thread
from gateway.mail.parse import ParsedMail, parse
from gateway.notify import Notifier, TicketRef

log = logging.getLogger("gateway.process")
TICKET: Any = Ticket.__table__
MESSAGE: Any = Message.__table__
CUSTOMER: Any = Customer.__table__
PARTICIPANT: Any = Participant.__table__
# Statements built once: building them per message (values as literals) cost more than the
# database round trips themselves.
INSERT_TICKET = insert(TICKET).returning(TICKET.c.id)
NUMBER_TICKET = update(TICKET).where(TICKET.c.id == bindparam("tid")).values(number=bindparam("number"))
TOUCH_TICKET = (update(TICKET).where(TICKET.c.id == bindparam("tid"))
                .values(updated_at=bindparam("now")).returning(TICKET.c.number))
FIND_CUSTOMER = select(CUSTOMER.c.id, CUSTOMER.c.email, CUSTOMER.c.name, CUSTOMER.c.language).where(
    CUSTOMER.c.email == bindparam("email"))
FIND_DUPLICATE = select(MESSAGE.c.id).where(
    MESSAGE.c.message_id == bindparam("mid"), MESSAGE.c.body_hash == bindparam("hash"), MESSAGE.c.direction == "in"
).limit(1)
QUARANTINE: Any = Quarantine.__table__
FINISH_INBOUND = (update(INBOUND).where(INBOUND.c.id == bindparam("iid"), INBOUND.c.claim == bindparam("token"))
                  .values(state=bindparam("state"), processed_at=bindparam("now"), lease_until=None,
                          note=bindparam("note")))
# The null reverse path as stored in `inbound.mail_from`; an empty string there means "unknown"
# (a pipe or IMAP import without an envelope), which must not be mistaken for a bounce.
NULL_SENDERS = ("<>",)


class Skip(Exception):
    """The item is no longer ours (its lease expired and another worker took it)."""


@dataclass
class Context:
    """One inbound item on its way through the stages; stages annotate it."""

    inbound_id: int
    claim: str
    raw: bytes
    mail_from: str
    rcpt_to: list[str]
    source: str
    parsed: ParsedMail | None = None
    kind: str = "customer"
    reasons: list[str] = field(default_factory=list)
    text: str = ""
    thread: ThreadResult | None = None
    mailbox: str = ""
    ticket_number: int | None = None
    outcome: str = ""
    stage: str = ""
    trace: list[str] = field(default_factory=list)

    @property
    def mail(self) -> ParsedMail:
        assert self.parsed is not None, "parse stage has not run"
        return self.parsed


@dataclass
class Pipeline:
    """The stages and what they need: configuration, templates and the tag format."""

    config: Config
    notifier: Notifier
    tags: TagFormat

    # -- PREPARE: no database --------------------------------------------------------------

    def parse(self, ctx: Context) -> None:
        ctx.parsed = parse(ctx.raw)
        if not ctx.mail.from_addr and ctx.mail_from in ("", *NULL_SENDERS):
            raise ValueError("no sender: neither a From address nor an envelope sender")

    def classify(self, ctx: Context) -> None:
        mail = ctx.mail
        auto = mail.header("Auto-Submitted").strip().lower()
        precedence = mail.header("Precedence").strip().lower()
        if mail.header("X-Postdesk-Loop"):
            ctx.kind, ctx.reasons = "loop", ["our loop header"]
        elif ctx.mail_from in NULL_SENDERS:
            ctx.kind, ctx.reasons = "bounce", ["null return path"]
        elif auto and auto != "no":
            ctx.kind, ctx.reasons = "auto_reply", [f"Auto-Submitted: {auto}"]
        elif precedence in ("bulk", "junk", "list", "auto_reply"):
            ctx.kind, ctx.reasons = "auto_reply", [f"Precedence: {precedence}"]

    def strip(self, ctx: Context) -> None:
        ctx.text = ctx.mail.text_plain.strip() or ctx.mail.text_html.strip()

    # -- APPLY: inside the batch transaction -----------------------------------------------

    def thread(self, ctx: Context, conn: Connection) -> None:
        mail = ctx.mail
        ctx.thread = find_thread(
            conn,
            tags=self.tags,
            subject=mail.subject,
            sender=self.sender(ctx),
            in_reply_to=mail.in_reply_to,
            references=mail.references,
        )
        ctx.trace.append(f"thread:{ctx.thread.by}")

    def route(self, ctx: Context, conn: Connection) -> None:
        ours = [rcpt for rcpt in ctx.rcpt_to if rcpt in self.config.mailboxes]
        ctx.mailbox = ours[0] if ours else self._base_mailbox(ctx.rcpt_to[0] if ctx.rcpt_to else "")

    def apply(self, ctx: Context, conn: Connection) -> None:
        assert ctx.thread is not None
        mail = ctx.mail
        duplicate = _duplicate_of(conn, mail)
        if duplicate is not None:
            ctx.outcome = f"duplicate of message {duplicate}"
            return
        if ctx.thread.ticket_id is not None:
            ticket_id = ctx.thread.ticket_id
            self._store_message(conn, ctx, ticket_id)
            ctx.ticket_number = conn.execute(TOUCH_TICKET, {"tid": ticket_id, "now": utcnow()}).scalar_one()
            ctx.outcome = f"appended ({ctx.kind})"
            return
        if ctx.kind != "customer":
            # Automatic mail never opens a ticket by itself and never gets an answer.
            ctx.outcome = f"recorded {ctx.kind} without ticket: {', '.join(ctx.reasons)}"
            return
        self._new_ticket(ctx, conn)

    # -- helpers ---------------------------------------------------------------------------

    def sender(self, ctx: Context) -> str:
        return ctx.mail.from_addr or ("" if ctx.mail_from in NULL_SENDERS else ctx.mail_from.lower())

    def _base_mailbox(self, address: str) -> str:
        local, _, domain = address.partition("@")
        return f"{local.split('+', 1)[0]}@{domain}"

    def _new_ticket(self, ctx: Context, conn: Connection) -> None:
        mail = ctx.mail
        customer = _customer(conn, self.sender(ctx), mail.from_name)
        subject = " ".join(mail.subject.split()) or "(no subject)"
        now = utcnow()
        ticket_id = conn.execute(INSERT_TICKET, {
            "subject": subject, "status": "new", "customer_id": customer.id, "mailbox": ctx.mailbox,
            "created_at": now, "updated_at": now,
        }).scalar_one()
        # Numbers follow ids: unique across daemons without a counter row everyone would lock.
        number = self.config.tickets.first_number + ticket_id - 1
        conn.execute(NUMBER_TICKET, {"tid": ticket_id, "number": number})
        _add_participant(conn, ticket_id, customer.email, "customer")
        self._store_message(conn, ctx, ticket_id)
        self.notifier.confirmation(
            conn,
            TicketRef(ticket_id, number, subject),
            to=customer.email,
            customer_name=customer.name,
            language=customer.language,
            mailbox=ctx.mailbox,
            in_reply_to=mail.message_id or None,
            references=mail.references,
        )
        ctx.ticket_number, ctx.outcome = number, "created"

    def _store_message(self, conn: Connection, ctx: Context, ticket_id: int) -> None:
        mail = ctx.mail
        conn.execute(insert(MESSAGE), {
            "ticket_id": ticket_id,
            "direction": "in",
            "kind": ctx.kind,
            "author": self.sender(ctx),
            "message_id": mail.message_id,
            "subject": mail.subject,
            "text": ctx.text,
            "body_hash": mail.body_hash,
            "thread_by": ctx.thread.by if ctx.thread else "",
            "inbound_id": ctx.inbound_id,
            "created_at": utcnow(),
        })


def _duplicate_of(conn: Connection, mail: ParsedMail) -> int | None:
    if not mail.message_id:
        return None
    return conn.execute(FIND_DUPLICATE, {"mid": mail.message_id, "hash": mail.body_hash}).scalar()


def _insert_ignore(conn: Connection, table: Any, values: dict[str, Any]) -> None:
    """INSERT that does nothing when a unique key exists: two daemons may meet the same customer."""
    dialect = conn.dialect.name
    conn.execute(_IGNORING[dialect, table.name], values)


_IGNORING = {
    (dialect, table.name): maker(table).on_conflict_do_nothing()
    for dialect, maker in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
    for table in (CUSTOMER, PARTICIPANT)
}


def _customer(conn: Connection, email: str, name: str) -> Row[Any]:
    _insert_ignore(conn, CUSTOMER, {"email": email, "name": name, "created_at": utcnow()})
    return conn.execute(FIND_CUSTOMER, {"email": email}).one()


def _add_participant(conn: Connection, ticket_id: int, email: str, role: str) -> None:
    _insert_ignore(conn, PARTICIPANT, {"ticket_id": ticket_id, "email": email, "role": role})


Stage = Callable[[Context], None]
DbStage = Callable[[Context, Connection], None]


class Processor:
    """Claims batches from the inbound queue and runs them through the pipeline."""

    def __init__(self, engine: Engine, pipeline: Pipeline, instance: str) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.instance = instance
        self.prepare: tuple[tuple[str, Stage], ...] = (
            ("parse", pipeline.parse),
            ("classify", pipeline.classify),
            ("strip", pipeline.strip),
        )
        self.apply: tuple[tuple[str, DbStage], ...] = (
            ("thread", pipeline.thread),
            ("route", pipeline.route),
            ("apply", pipeline.apply),
        )

    def run_batch(self) -> int:
        """Process one batch; returns how many items were handled (0: the queue is empty)."""
        config = self.pipeline.config.processor
        from gateway.db.queues import new_claim

        token = new_claim(self.instance)
        rows = claim_inbound(
            self.engine, token, limit=config.batch_size, lease=timedelta(seconds=config.lease_seconds)
        )
        if not rows:
            return 0
        contexts = [self._prepare(_context(row, token)) for row in rows]
        started = time.perf_counter()
        with self.engine.begin() as conn:
            for ctx in contexts:
                self._apply_one(conn, ctx)
        log.debug("batch of %d committed in %.1f ms", len(rows), (time.perf_counter() - started) * 1000)
        for ctx in contexts:
            _log_outcome(ctx)
        return len(rows)

    def _prepare(self, ctx: Context) -> Context:
        for name, stage in self.prepare:
            ctx.stage = name
            try:
                stage(ctx)
            except Exception as exc:
                ctx.outcome = f"quarantined at {name}: {exc}"
                ctx.reasons.append(_reason(exc))
                return ctx
        ctx.stage = ""
        return ctx

    def _apply_one(self, conn: Connection, ctx: Context) -> None:
        if ctx.stage:  # a PREPARE stage failed
            _quarantine(conn, ctx, ctx.stage, ctx.reasons[-1])
            return
        try:
            with conn.begin_nested():
                for name, stage in self.apply:
                    ctx.stage = name
                    stage(ctx, conn)
                _finish(conn, ctx, "done", ctx.outcome)
        except Skip:
            ctx.outcome = "skipped: lease lost"
        except Exception as exc:
            log.exception("stage %s failed for inbound %d", ctx.stage, ctx.inbound_id)
            ctx.outcome = f"quarantined at {ctx.stage}: {exc}"
            _quarantine(conn, ctx, ctx.stage, _reason(exc))


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _context(row: Row[Any], token: str) -> Context:
    return Context(
        inbound_id=row.id,
        claim=token,
        raw=row.raw,
        mail_from=row.mail_from,
        rcpt_to=[r for r in row.rcpt_to.split(",") if r],
        source=row.source,
    )


def _finish(conn: Connection, ctx: Context, state: str, note: str) -> None:
    result = conn.execute(FINISH_INBOUND, {
        "iid": ctx.inbound_id, "token": ctx.claim, "state": state, "now": utcnow(), "note": note[:500],
    })
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Skip()


def _quarantine(conn: Connection, ctx: Context, stage: str, reason: str) -> None:
    try:
        with conn.begin_nested():
            _finish(conn, ctx, "quarantined", f"{stage}: {reason}")
            conn.execute(insert(QUARANTINE), {"inbound_id": ctx.inbound_id, "stage": stage, "reason": reason,
                                              "created_at": utcnow()})
    except Skip:
        ctx.outcome = "skipped: lease lost"


def _log_outcome(ctx: Context) -> None:
    mid = ctx.parsed.message_id if ctx.parsed else ""
    number = f"#{ctx.ticket_number}" if ctx.ticket_number else "-"
    level = logging.WARNING if ctx.outcome.startswith("quarantined") else logging.INFO
    log.log(level, "inbound %d %s ticket %s message %s: %s", ctx.inbound_id, ctx.kind, number, mid or "(none)", ctx.outcome)


