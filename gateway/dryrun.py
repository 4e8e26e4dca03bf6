"""`postdesk route FILE…`: every stage on each message, in a transaction that is rolled back.

Admins use it to see why a mail went where: classification, thread, rules matched per mailbox,
the new text, attachments, and which mail Postdesk would send. It reads the configured database
(so threading is checked against real tickets) and changes nothing; without a database at the
current schema it uses an empty in-memory one and says so. One `Router` serves every message
of a run: the engine, rules and templates are loaded once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

# Imported where used: a verb that routes nothing loads none of the pipeline.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.config import Config
    from gateway.process import Processor
    from gateway.stages.context import Context


def _engine(config: Config) -> tuple[Engine, str]:
    """The configured store when it is at this version's schema, else an empty one and why."""
    from sqlalchemy.engine import make_url

    from gateway.db.engine import head_revision, make_engine, revision_of

    url = make_url(config.database.url)
    file = url.database if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") else None
    if file is not None and not Path(file).exists():
        # Opening it would create the file: a dry run changes nothing.
        return _empty_store(), f"no database {file}: threading checked against an empty store"
    try:
        engine = make_engine(config.database.url, pool_size=1)
        with engine.connect() as conn:
            if revision_of(conn) == head_revision():
                return engine, ""
        engine.dispose()
        note = "the database is not at the current schema"
    except Exception as exc:  # no database at all is a normal case for a rules author
        note = f"the database is not available ({type(exc).__name__})"
    return _empty_store(), f"{note}: threading checked against an empty store"


def _empty_store() -> Engine:
    """An in-memory store with every table, made from the Core tables (no migrations to run).

    The tables describe the columns and indexes the migrations build (the models-drift and
    tables-mirror tests hold models, tables and migrations alike), so this is the head schema
    without loading Alembic and replaying every revision; server-side defaults the migrations
    add for old rows are not needed here. Its image is kept between runs (gateway.db.blank).
    """
    from gateway.db.blank import empty_store

    return empty_store()


class Router:
    """Routes many messages against one engine (opened on first use, disposed by `close`)."""

    def __init__(self, config: Config, processor: Processor) -> None:
        self.config, self.processor = config, processor
        self._engine: tuple[Engine, str] | None = None

    @classmethod
    def for_config(cls, config: Config) -> Router:
        """A router with the daemon's pipeline; raises RulesError or DirectoryError for broken rules."""
        from gateway.process import Processor
        from gateway.stages.pipeline import build_pipeline

        return cls(config, Processor(None, build_pipeline(config), "dry-run"))  # type: ignore[arg-type]

    def route(self, raw: bytes, *, mailbox: str | None = None, sender: str = "") -> dict[str, Any]:
        if self._engine is None:
            self._engine = _engine(self.config)
        engine, note = self._engine
        return _route(self.config, self.processor, engine, note, raw, mailbox=mailbox, sender=sender)

    def close(self) -> None:
        if self._engine is not None:
            self._engine[0].dispose()
            self._engine = None


def route_message(config: Config, processor: Processor, raw: bytes, *, mailbox: str | None = None,
                  sender: str = "") -> dict[str, Any]:
    router = Router(config, processor)
    try:
        return router.route(raw, mailbox=mailbox, sender=sender)
    finally:
        router.close()


def _route(config: Config, processor: Processor, engine: Engine, note: str, raw: bytes, *,
           mailbox: str | None, sender: str) -> dict[str, Any]:
    from sqlalchemy import select

    from gateway.db.tables import TICKET
    from gateway.intake.writer import InboundItem, insert_inbound
    from gateway.stages.context import Context, Reject, base_mailbox

    ctx = Context(inbound_id=0, claim="dry-run", raw=raw, mail_from=sender, rcpt_to=[], source="dry-run")
    processor.run_prepare(ctx)
    if mailbox:
        ctx.rcpt_to = [mailbox.lower()]
    else:
        # As an MTA would: every one of our mailboxes the message's To and Cc name.
        named = [a for a in (ctx.parsed.to + ctx.parsed.cc if ctx.parsed else []) if base_mailbox(a) in config.mailboxes]
        ctx.rcpt_to = named or [config.mailboxes[0]]
    rcpt = ",".join(ctx.rcpt_to)
    error = ctx.outcome if ctx.stage else ""
    thread_numbers: list[int] = []
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            if not error:
                # Written as every inbound row is, by the intake's writer, and rolled back below.
                (ctx.inbound_id,) = insert_inbound(
                    conn, [InboundItem(source="dry-run", mail_from=sender, rcpt_to=rcpt, raw=raw)])
                processor.run_item_stages(conn, ctx)
                if ctx.thread and ctx.thread.ticket_ids:
                    numbers = conn.execute(select(TICKET.c.number).where(TICKET.c.id.in_(ctx.thread.ticket_ids)))
                    thread_numbers = sorted(n for (n,) in numbers)
        except Reject as exc:
            error = f"quarantined by rule: {exc}"
        except Exception as exc:
            error = f"quarantined at {ctx.stage}: {type(exc).__name__}: {exc}"
        finally:
            transaction.rollback()
    return _report(ctx, error, note, thread_numbers)


def _report(ctx: Context, error: str, note: str, thread_numbers: list[int]) -> dict[str, Any]:
    from gateway.mail.reading import mail_facts

    mail = ctx.parsed
    thread = ctx.thread
    facts = mail_facts(mail) if mail else {}
    quarantined = error.startswith("quarantined")
    return {
        **facts,
        "from": ctx.sender if mail else "",
        "new_text": ctx.text,
        "signature": ctx.signature,
        "automatic": ctx.kind in ("auto_reply", "bounce", "loop"),
        "may_auto_answer": ctx.may_auto_answer,
        "no_answer_reasons": ctx.no_answer_reasons,
        "quarantine": error if quarantined else "",
        "subject": mail.subject if mail else "",
        "message_id": mail.message_id if mail else "",
        "kind": ctx.kind,
        "reasons": ctx.reasons,
        "thread": {"ticket": None, "tickets": [], "by": "none"} if thread is None else {
            "ticket": thread_numbers[0] if thread_numbers else None, "tickets": thread_numbers,
            "by": thread.by, "note": thread.note,
        },
        "tickets": ctx.ticket_numbers,
        "rules": sorted({name for d in ctx.decisions.values() for name in d.matched}),
        "routing": {
            box: {"department": d.department, "department_from": d.department_from, "topic": d.topic,
                  "priority": d.priority, "sla": d.sla, "assignee": d.assignee, "tags": d.tags,
                  "fields": d.fields, "missing_fields": d.missing_fields, "confirm": d.confirm,
                  "action": d.action, "action_reason": d.action_reason, "rules": d.matched, "notes": d.notes}
            for box, d in ctx.decisions.items()
        },
        "text": ctx.text,
        "notifications": ctx.notifications,
        "outcome": error or ctx.outcome,
        "notes": ctx.notes + ([note] if note else []),
    }
