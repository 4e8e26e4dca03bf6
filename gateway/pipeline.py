"""The stages one inbound message goes through, each a small named step over a `Context`.

`PREPARE` stages (parse, classify, strip) need no database; `APPLY` stages (thread, route,
apply) run inside the processor's transaction. Stages annotate the context, and everything they
decide is kept in `ctx.trace`, which is stored with the message and printed by `postdesk route`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select

from gateway.agents.behalf import OnBehalf, forwarded, on_behalf
from gateway.agents.desk import Desk
from gateway.agents.proof import Proof, Prover
from gateway.config import Config
from gateway.copies import earlier_copies, hold_message_ids, recipients
from gateway.db.models import Bounce as BounceRow
from gateway.clock import utcnow
from gateway.db.tables import OUTBOX
from gateway.followup import TagFormat, ThreadResult, by_token, find_thread, is_participant
from gateway.guard import suppress
from gateway.i18n.catalogues import N_
from gateway.routing.people import new_customer_language
from gateway.mail.classify import classify
from gateway.mail.compose import LOOP_HEADER
from gateway.mail.bounces import BounceReport
from gateway.mail import known
from gateway.mail.htmltext import html_to_text, sanitize_html
from gateway.mail.limits import Limits, parse_bounded
from gateway.mail.parse import ParsedMail
from gateway.mail.quotes import reply_of
from gateway.notify import Notifier
from gateway.routing.facts import Decision, Facts
from gateway.routing.router import route
from gateway.routing.staff import audience, triage_department
from gateway.routing.runtime import Routing
from gateway.tickets import actions, notices, store
from gateway.tickets.lifecycle import Status
from gateway.tickets.store import TicketRef

log = logging.getLogger("gateway.process")
# The null reverse path as stored in `inbound.mail_from`; an empty string there means "unknown"
# (a pipe or IMAP import without an envelope), which must not be mistaken for a bounce.
NULL_SENDER = "<>"
_SENT_AS = select(OUTBOX.c.ticket_id).where(OUTBOX.c.message_id == bindparam("mid"))


# A reply to a resolved ticket whose first line is a rating: "4", "5 - great", "3: ok".
# The number must stand alone on its line or be followed by punctuation: "5 computers are
# broken again" is news, not a rating.
RATING_LINE = re.compile(r"\A\s*([1-5])[ \t]*(?:/[ \t]*5)?[ \t]*(?:[-–:.,!]|(?=\n)|\Z)\s*(.*)", re.S)


class Reject(Exception):
    """A rule sent the message to quarantine (the stage's reason is the rule's)."""


@dataclass
class Context:
    """One inbound item on its way through the stages; stages annotate it."""

    inbound_id: int
    claim: str
    raw: bytes
    mail_from: str
    rcpt_to: list[str]
    source: str
    # The SMTP client's IP address ("" for pipe and IMAP): whether our MTA handed it over.
    peer: str = ""
    parsed: ParsedMail | None = None
    kind: str = "customer"
    reasons: list[str] = field(default_factory=list)
    bounce: BounceReport | None = None
    text: str = ""
    body: str = ""
    html: str = ""
    signature: str = ""  # taken off `text`, kept beside it
    # The second decision beside `kind`: may this mail get an automatic answer (confirmation)?
    may_auto_answer: bool = True
    no_answer_reasons: list[str] = field(default_factory=list)
    thread: ThreadResult | None = None
    mailboxes: list[str] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)
    # Departments an earlier delivery of this same mail already opened a ticket in.
    covered_departments: set[str | None] = field(default_factory=set)
    ticket_numbers: list[int] = field(default_factory=list)
    notifications: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcome: str = ""
    stage: str = ""
    proof: Proof = field(default_factory=Proof)
    # A ticket an agent opens for a customer: whose it is and their words.
    on_behalf: OnBehalf | None = None
    # What `gateway.mail.limits` cut from a message over a cap: notes for the ticket.
    held: list[str] = field(default_factory=list)

    @property
    def mail(self) -> ParsedMail:
        assert self.parsed is not None, "parse stage has not run"
        return self.parsed

    @property
    def sender(self) -> str:
        """Whose mail this is: the From address, or the customer an agent writes for."""
        if self.on_behalf is not None:
            return self.on_behalf.address
        return self.mail.from_addr or ("" if self.mail_from == NULL_SENDER else self.mail_from.lower())

    @property
    def sender_name(self) -> str:
        return self.on_behalf.name if self.on_behalf is not None else self.mail.from_name

    @property
    def subject(self) -> str:
        return self.on_behalf.subject if self.on_behalf is not None else self.mail.subject

    def trace(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reasons": self.reasons,
            "automatic": self.kind in ("auto_reply", "bounce", "loop"),
            "may_auto_answer": self.may_auto_answer,
            "no_answer_reasons": self.no_answer_reasons,
            "sender_from": self.parsed.sender.source if self.parsed else "",
            "sender_as_written": self.parsed.sender.address if self.parsed else "",
            "proof": self.proof.summary(),
            "thread": self.thread.by if self.thread else None,
            "thread_note": self.thread.note if self.thread else "",
            "rules": {box: d.matched for box, d in self.decisions.items()},
            "department_from": {box: d.department_from for box, d in self.decisions.items()},
            "notes": self.notes + [n for d in self.decisions.values() for n in d.notes],
        }


def facts_for(mail: ParsedMail, mailbox: str, *, sender: str, text: str, followup: bool) -> Facts:
    """What routing may look at, for one of our mailboxes."""
    headers: dict[str, list[str]] = {}
    for name, value in mail.message.items():
        headers.setdefault(name.lower(), []).append(str(value))
    return Facts(mailbox=mailbox, from_addr=sender, to=mail.to, cc=mail.cc, subject=mail.subject, body=text,
                 headers=headers, has_attachment=bool(mail.attachments), followup=followup)


def base_mailbox(address: str) -> str:
    """`support+t104233.3f9a@x` is a reply address of `support@x`."""
    local, _, domain = address.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


@dataclass
class Pipeline:
    config: Config
    notifier: Notifier
    tags: TagFormat
    routing: Any  # a RoutingState (or anything with `.current: Routing`)

    def __post_init__(self) -> None:
        # Derived from the secret once: reading store/secret.key per message would be waste.
        self.loop_token = self.config.loop_token()
        self.prover = Prover(self.config)
        self.desk = Desk(self.notifier, lambda: self.routing.current.directory)
        self.limits = Limits(**self.config.limits.model_dump())

    # -- PREPARE: no database --------------------------------------------------------------

    def parse(self, ctx: Context) -> None:
        envelope = None if ctx.mail_from in ("", NULL_SENDER) else ctx.mail_from
        ctx.parsed, ctx.held = parse_bounded(ctx.raw, self.limits, envelope=envelope)

    def classify(self, ctx: Context) -> None:
        mail_from = None if ctx.mail_from == "" else ("" if ctx.mail_from == NULL_SENDER else ctx.mail_from)
        result = classify(ctx.mail.message, mail_from=mail_from,
                          own_domains=frozenset({self.config.message_id_domain.lower()}),
                          loop_header=LOOP_HEADER, loop_token=self.loop_token)
        ctx.kind, ctx.reasons, ctx.bounce = result.kind, list(result.reasons), result.bounce
        ctx.may_auto_answer, ctx.no_answer_reasons = result.may_auto_answer, list(result.no_answer_reasons)
        # A bounce or an auto-reply without a sender is normal; a customer's mail needs one to
        # be answered and threaded.
        if ctx.kind == "customer" and not ctx.sender:
            raise ValueError("no sender: neither a From address nor an envelope sender")

    def strip(self, ctx: Context) -> None:
        mail = ctx.mail
        ctx.body = mail.text_plain.strip() or (html_to_text(mail.text_html) if mail.text_html else "")
        reply = reply_of(mail.text_plain or None, mail.text_html or None, mail.from_name)
        ctx.text = reply.text.strip() or ctx.body
        ctx.signature = reply.signature if reply.text.strip() else ""
        ctx.html = sanitize_html(mail.text_html) if mail.text_html else ""

    def prove(self, ctx: Context) -> None:
        """Whether the mail is an agent's or an invited third party's, and what it proves."""
        if ctx.kind == "loop" or not ctx.mail.from_addr:
            return
        mail = ctx.mail
        ctx.proof = self.prover.prove(ctx.raw, mail.message, mail.from_addr, ctx.rcpt_to + mail.to + mail.cc,
                                      peer=ctx.peer)
        if ctx.kind != "customer" or ctx.proof.agent is None or ctx.proof.token is not None:
            return
        # A proven agent's fresh mail to support@ may open a ticket for a customer.
        ctx.on_behalf = on_behalf(ctx.text, mail.subject) or forwarded(mail, ctx.body)
        if ctx.on_behalf is not None:
            # The stored message is the customer's words only: not the agent's mail around them.
            ctx.text = ctx.body = ctx.on_behalf.text or "(no text)"
            ctx.html = ctx.signature = ""

    # -- APPLY: inside the batch transaction -----------------------------------------------

    def serialise(self, conn: Connection, contexts: list[Context]) -> None:
        """Copies of one mail in batches of two daemons take turns (`gateway.copies`)."""
        hold_message_ids(conn, [ctx.parsed.message_id for ctx in contexts if ctx.parsed])

    def thread(self, ctx: Context, conn: Connection) -> None:
        mail, proof = ctx.mail, ctx.proof
        if ctx.on_behalf is not None:
            ctx.thread = ThreadResult([], "none", f"opened by {mail.from_addr} for {ctx.sender} ({ctx.on_behalf.how})")
            return
        if proof.token is not None:
            ctx.thread = by_token(conn, proof.token.number)
        else:
            ctx.thread = find_thread(conn, tags=self.tags, subject=mail.subject, sender=ctx.sender,
                                     in_reply_to=mail.in_reply_to, references=mail.references,
                                     agent=proof.agent is not None, thread_index_header=mail.header("Thread-Index"))
        if proof.forged:
            # An agent's address without proof is a stranger's: it joins only tickets it takes part in.
            kept = [t for t in ctx.thread.ticket_ids if is_participant(conn, t, ctx.sender)]
            ctx.thread = ThreadResult(kept, ctx.thread.by if kept else "none",
                                      f"{ctx.sender} is an agent's address without proof")
        if ctx.kind == "customer" and ctx.thread.ticket_ids:
            if proof.third_party:
                ctx.kind = "third_party"
            elif proof.agent is not None:
                ctx.kind = "agent"

    def known(self, ctx: Context, conn: Connection) -> None:
        """Text we sent, quoted anywhere in a reply, is not the writer's (`gateway.mail.known`)."""
        if ctx.on_behalf is not None or ctx.thread is None or not ctx.thread.ticket_ids \
                or ctx.kind not in ("customer", "agent", "third_party"):
            return
        mail = ctx.mail
        sent = known.sent_texts(conn, message_ids=mail.in_reply_to + mail.references,
                                ticket_ids=ctx.thread.ticket_ids, to=ctx.sender)
        if not sent and ctx.kind == "customer":
            return  # nothing of ours to find: the strip stage's reading stands
        reply = known.own_reply(mail.text_plain or None, mail.text_html or None, known.Known.of(sent), mail.from_name)
        own = reply.text.strip()
        # A customer's reply that is all quote keeps its body; staff text goes out, so never that.
        if own or ctx.kind != "customer":
            ctx.text, ctx.signature = own, reply.signature if own else ""
        if own and ctx.kind != "customer":
            # The agent's own closing goes to the customer with their words; their client's block does not.
            ctx.text = "\n\n".join(part for part in (own, known.sign_off(reply.signature)) if part)
        if sent:
            ctx.notes.append(f"known text: compared with {len(sent)} mail(s) we sent")

    def route(self, ctx: Context, conn: Connection) -> None:
        ctx.mailboxes = self._recipients(ctx)
        if ctx.kind != "customer":
            return
        routing: Routing = self.routing.current
        followup = bool(ctx.thread and ctx.thread.ticket_ids)
        triage = triage_department(self.config, routing.directory)
        for box in ctx.mailboxes:
            facts = facts_for(ctx.mail, box, sender=ctx.sender, text=ctx.text, followup=followup)
            decision = ctx.decisions[box] = route(routing.rules, routing.directory, facts)
            if decision.department is None and triage is not None:
                # Nothing routed it: the triage department's people sort it, so it reaches someone.
                decision.department, decision.department_from = triage, "triage"
        for box, decision in ctx.decisions.items():
            if decision.action in ("quarantine", "reject"):
                raise Reject(f"rule {decision.matched[-1]!r} ({box}): {decision.action_reason or decision.action}")

    def apply(self, ctx: Context, conn: Connection) -> None:
        assert ctx.thread is not None
        fresh = self._not_yet_stored(ctx, conn)
        if not fresh:
            ctx.outcome = "duplicate delivery: already stored"
            return
        if ctx.kind == "bounce":
            self._record_bounce(ctx, conn)
        if ctx.proof.forged and ctx.kind == "customer":
            self.desk.report_forgery(conn, ctx.proof, ctx.sender, ctx.mail.subject, ctx.inbound_id)
        if ctx.kind in ("agent", "third_party"):
            self._staff_reply(ctx, conn, store.load(conn, ctx.thread.ticket_ids[0]))
            return
        if ctx.thread.ticket_ids and ctx.kind != "loop":
            for ticket_id in ctx.thread.ticket_ids:
                self._follow_up(ctx, conn, store.load(conn, ticket_id))
            ctx.outcome = ctx.outcome or f"appended ({ctx.kind})"
            return
        if ctx.kind != "customer":
            # Automatic mail never opens a ticket by itself and never gets an answer.
            ctx.outcome = ctx.outcome or f"recorded {ctx.kind} without ticket: {'; '.join(ctx.reasons)}"
            return
        decisions = {box: d for box, d in ctx.decisions.items() if box in fresh}
        if decisions and all(d.action == "drop" for d in decisions.values()):
            reasons = "; ".join(f"{d.matched[-1]}: {d.action_reason}" for d in decisions.values())
            ctx.outcome = f"dropped by rule ({reasons})"
            return
        self._new_tickets(ctx, conn, {b: d for b, d in decisions.items() if d.action == "deliver"})

    # -- helpers ---------------------------------------------------------------------------

    def _recipients(self, ctx: Context) -> list[str]:
        """All our mailboxes this mail is for, whatever the delivery (`gateway.copies`)."""
        return recipients([base_mailbox(r) for r in ctx.rcpt_to],
                          [base_mailbox(a) for a in ctx.mail.to + ctx.mail.cc], self.config.mailboxes)

    def _not_yet_stored(self, ctx: Context, conn: Connection) -> list[str]:
        """Our mailboxes this delivery is for that no earlier copy of the same mail covered."""
        named = [base_mailbox(a) for a in ctx.mail.to + ctx.mail.cc]
        earlier = earlier_copies(conn, ctx.mail.message_id, ctx.mail.body_hash, named, base_mailbox)
        if not earlier.found:
            return ctx.mailboxes
        # Copies stored for a follow-up carry the ticket's mailbox; any copy covers a follow-up.
        if ctx.thread and ctx.thread.ticket_ids:
            return []
        ctx.covered_departments = earlier.departments
        return [box for box in ctx.mailboxes if box not in earlier.mailboxes]

    def _message_values(self, ctx: Context, mailbox: str) -> dict[str, Any]:
        mail = ctx.mail
        # An agent's own mail and a third party's answer are for staff; the customer sees the
        # reply the agent's mail produced, sent from our mailbox.
        visibility = "internal" if ctx.kind in ("agent", "third_party") else "public"
        return {"direction": "in", "kind": ctx.kind, "author": ctx.sender, "message_id": mail.message_id,
                "visibility": visibility,
                "subject": mail.subject, "text": ctx.text, "body": ctx.body, "html": ctx.html,
                "html_sanitised": bool(ctx.html),
                "signature": ctx.signature,
                "body_hash": mail.body_hash, "thread_by": ctx.thread.by if ctx.thread else "",
                "inbound_id": ctx.inbound_id, "mailbox": mailbox,
                "trace": json.dumps(ctx.trace(), ensure_ascii=False)}

    def _store(self, ctx: Context, conn: Connection, ticket_id: int, mailbox: str) -> list[str]:
        """Store the message on the ticket; returns what was left out (attachments over the limit)."""
        row = store.add_message(conn, ticket_id, self._message_values(ctx, mailbox))
        notes = ctx.held + store.store_attachments(conn, row, ctx.mail.attachments, self.config.attachments.max_size)
        for note in notes:
            store.add_event(conn, ticket_id, "note", actor="postdesk", detail=note)
        ctx.notes.extend(notes)
        return notes

    def _staff_reply(self, ctx: Context, conn: Connection, ticket: Any) -> None:
        """An agent working the ticket by mail, or the third party they asked, answering."""
        self._store(ctx, conn, ticket.id, ticket.mailbox)
        ctx.ticket_numbers.append(ticket.number)
        if ctx.kind == "third_party":
            ctx.outcome = self.desk.third_party_mail(conn, ticket, ctx.sender, ctx.text)
            return
        assert ctx.proof.agent is not None
        ctx.outcome = self.desk.agent_mail(conn, ticket, ctx.proof.agent, text=ctx.text,
                                           message_id=ctx.mail.message_id or None, files=ctx.mail.attachments)

    def _follow_up(self, ctx: Context, conn: Connection, ticket: Any) -> None:
        if ctx.kind == "customer" and ticket.status == Status.CLOSED.value:
            self._reopen_as_new(ctx, conn, ticket, "the ticket is closed")
            return
        if ctx.kind == "customer" and ticket.status == Status.RESOLVED.value:
            window = timedelta(days=self.config.lifecycle.reopen_days)
            if ticket.resolved_at is not None and utcnow() - ticket.resolved_at > window:
                self._reopen_as_new(ctx, conn, ticket, f"resolved more than {window.days} days ago")
                return
        dropped = "\n".join(self._store(ctx, conn, ticket.id, ticket.mailbox))
        ctx.ticket_numbers.append(ticket.number)
        if ctx.kind != "customer":
            return  # auto-replies and bounces are recorded, never change the status
        rating = RATING_LINE.match(ctx.text)
        if ticket.status == Status.RESOLVED.value and rating:
            # "5 - thanks, all good": a rating of the resolution, not a reason to reopen.
            actions.rate(conn, ticket, int(rating.group(1)), rating.group(2).strip(), actor=ctx.sender)
            ctx.notes.append(f"rating {rating.group(1)} recorded")
        elif ticket.status in (Status.WAITING_CUSTOMER.value, Status.RESOLVED.value):
            why = "customer replied" if ticket.status == Status.WAITING_CUSTOMER.value else "customer reopened by replying"
            # The customer knows they replied: only a reopening is announced (to them and the agent).
            reopening = ticket.status == Status.RESOLVED.value
            ticket = actions.set_status(conn, self.notifier, ticket, Status.IN_PROGRESS, actor=ctx.sender, why=why,
                                        notify=reopening)
            if not reopening:
                self.notifier.ticket_event(conn, ticket, "customer_replied", text=ctx.text, actor=ctx.sender,
                                           staff_note=dropped)
        else:
            self.notifier.ticket_event(conn, ticket, "customer_replied", text=ctx.text, actor=ctx.sender,
                                       staff_note=dropped)
        missing = [m for m in ticket.missing_fields.split(",") if m]
        if missing:
            directory = self.routing.current.directory
            given = directory.parse_fields(ctx.text, missing)
            if given:
                still = store.update_fields(conn, ticket, given, missing)
                store.add_event(conn, ticket.id, "fields", actor=ctx.sender,
                                detail=f"supplied {', '.join(sorted(given))}; missing {', '.join(still) or 'nothing'}")

    def _reopen_as_new(self, ctx: Context, conn: Connection, old: Any, why: str) -> None:
        decision = Decision(department=old.department, topic=old.topic, priority=old.priority)
        ref = self._create(ctx, conn, old.mailbox, decision, linked=old)
        ctx.notes.append(f"new ticket {ref.number} linked to {old.number}: {why}")

    def _new_tickets(self, ctx: Context, conn: Connection, decisions: dict[str, Decision]) -> None:
        # One ticket per department: two of our addresses routing to one team make one ticket.
        by_department: dict[str | None, tuple[str, Decision]] = {}
        for box, decision in decisions.items():
            if decision.department not in ctx.covered_departments:
                by_department.setdefault(decision.department, (box, decision))
        if not by_department:
            ctx.outcome = "duplicate delivery: its departments already have its ticket"
            return
        for box, decision in by_department.values():
            self._create(ctx, conn, box, decision)
        ctx.outcome = "created" if len(by_department) == 1 else f"created {len(by_department)} tickets (fan-out)"

    def _create(self, ctx: Context, conn: Connection, mailbox: str, decision: Decision, linked: Any = None) -> TicketRef:
        mail = ctx.mail
        directory = self.routing.current.directory
        org = directory.organisation_for(ctx.sender)
        customer = store.customer(conn, ctx.sender, ctx.sender_name, org.name if org else None)
        subject = " ".join(ctx.subject.split()) or "(no subject)"
        language = customer.language or new_customer_language(self.config, directory, org, decision.department,
                                                              f"{subject}\n{ctx.text}")[0]
        values = {
            "department": decision.department, "topic": decision.topic, "priority": decision.priority or "normal",
            "sla_plan": decision.sla, "assignee": decision.assignee, "organisation": customer.organisation,
            "tags": ",".join(decision.tags), "fields": json.dumps(decision.fields, ensure_ascii=False),
            "missing_fields": ",".join(decision.missing_fields),
            "language": language,
            "linked_ticket_id": linked.id if linked is not None else None,
        }
        why = f"mail to {mailbox}; rules {', '.join(decision.matched) or 'none'}; department from {decision.department_from or 'nothing'}"
        ref = store.create_ticket(conn, first_number=self.config.tickets.first_number, customer_id=customer.id,
                                  subject=subject, mailbox=mailbox, actor=ctx.sender, values=values, why=why)
        store.add_participant(conn, ref.id, customer.email, "customer")
        dropped = self._store(ctx, conn, ref.id, mailbox)
        ctx.ticket_numbers.append(ref.number)
        if ctx.on_behalf is not None:
            self._opened_by_agent(ctx, conn, ref)
        # The customer's confirmation answers their own mail: never an agent's that passed it on.
        answers = (ctx.on_behalf.message_id if ctx.on_behalf is not None else mail.message_id) or None
        if decision.confirm and not ctx.may_auto_answer:
            ctx.notes.append(f"no confirmation: {'; '.join(ctx.no_answer_reasons)}")
        elif decision.confirm:
            labels = {f.name: f.label for f in directory.fields.values()}
            sent = self.notifier.confirmation(
                conn, ref, to=customer.email, customer_name=customer.name,
                language=language,
                mailbox=mailbox, in_reply_to=answers, references=[] if ctx.on_behalf is not None else mail.references,
                missing=[labels.get(m, m) for m in decision.missing_fields],
                linked_number=linked.number if linked is not None else None,
                dropped=[item.filename for item in mail.attachments if len(item.payload) > self.config.attachments.max_size],
            )
            if sent:
                ctx.notifications.append({"kind": "confirmation", "to": customer.email, "ticket": str(ref.number)})
        ticket = store.load(conn, ref.id)
        for agent in audience(self.config, directory, ticket.department):
            self.notifier.staff_notice(conn, ticket, agent.address, "new_ticket", notices.lines(
                notices.words(N_("New ticket from %(name)s <%(email)s>."), name=customer.name or customer.email,
                              email=customer.email), *dropped))
        return ref

    def _opened_by_agent(self, ctx: Context, conn: Connection, ref: TicketRef) -> None:
        assert ctx.on_behalf is not None
        agent = ctx.mail.from_addr
        store.add_event(conn, ref.id, "on_behalf", actor=agent, detail=f"opened for {ctx.sender} ({ctx.on_behalf.how})")
        if ctx.on_behalf.intro:
            actions.note(conn, ref, ctx.on_behalf.intro, actor=agent)
        ctx.notes.append(f"opened by agent {agent} for {ctx.sender} ({ctx.on_behalf.how})")

    def _record_bounce(self, ctx: Context, conn: Connection) -> None:
        bounce = ctx.bounce
        if bounce is None:
            return
        ticket_id = None
        if bounce.original_message_id:
            ticket_id = conn.execute(_SENT_AS, {"mid": bounce.original_message_id}).scalar()
        if ticket_id is not None and ctx.thread is not None and not ctx.thread.ticket_ids:
            ctx.thread = ThreadResult([ticket_id], "bounce", "original Message-ID in the report")
        for failed in bounce.recipients:
            conn.execute(BounceRow.__table__.insert(), {  # type: ignore[attr-defined]
                "inbound_id": ctx.inbound_id, "recipient": failed.address, "status": failed.status,
                "hard": failed.hard, "diagnostic": failed.diagnostic[:1000],
                "original_message_id": bounce.original_message_id, "ticket_id": ticket_id, "created_at": utcnow(),
            })
            if failed.hard:
                suppress(conn, self.config, failed.address, f"hard bounce {failed.status or failed.smtp_code}: {failed.diagnostic[:200]}")
                ctx.notes.append(f"{failed.address} suppressed after a hard bounce ({failed.status})")
        ctx.outcome = f"bounce recorded for {', '.join(f.address for f in bounce.recipients) or 'unknown recipient'}"
