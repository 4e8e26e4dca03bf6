"""Mail that events cause: rendered from templates and written to the outbox in the caller's transaction.

Each outgoing mail is also stored as an outbound `Message` on its ticket, so that a customer who
answers it (In-Reply-To: our Message-ID) is threaded back onto the right ticket. In the
processor's set-based batch both rows wait for the batch's end (`store.queue_mail`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select

from gateway.clock import utcnow
from gateway.config import Agent, Config
from gateway.db.rows import CustomerRow, TicketRow
from gateway.db.tables import CUSTOMER, MESSAGE
from gateway.followup import thread_index
from gateway.guard import Verdict, allow_automatic, suppressed
from gateway.i18n.catalogues import gettext
from gateway.links.reply import Purpose, reply_address
from gateway.links.tags import TagFormat
from gateway.links.unsubscribe import unsubscribe_link
from gateway.links.web import feedback_links, ticket_link
from gateway.mail.compose import Outgoing
from gateway.mail.parse import Attachment
from gateway.templating import MailTemplates
from gateway.tickets import notices, store
from gateway.tickets.events import (
    AdminNotice,
    AgentResult,
    Confirmation,
    Event,
    StaffDigest,
    StaffNotice,
    TellStaff,
    ThirdPartyQuestion,
    TicketEvent,
)
from gateway.tickets.lifecycle import Status, display_name
from gateway.tickets.notices import Text
from gateway.tickets.rows import TicketKey

_CUSTOMER = select(CUSTOMER).where(CUSTOMER.c.id == bindparam("cid"))
# The customer's thread: what they sent and what we sent them. An agent's own mail and a third
# party's exchange are on the ticket too, but the customer never saw them (and an agent's
# Message-ID may name their machine), so they stay out of In-Reply-To and References.
_THREAD = (select(MESSAGE.c.message_id).where(MESSAGE.c.ticket_id == bindparam("tid"), MESSAGE.c.message_id != "",
                                              MESSAGE.c.visibility != "internal",
                                              MESSAGE.c.kind != "third_party_question")
           .order_by(MESSAGE.c.id.desc()).limit(20))


def _title(event: str) -> str:
    """"customer_replied" -> "Customer replied"; "SLA breached" stays as written."""
    words = event.replace("_", " ")
    return words[:1].upper() + words[1:]


def _thread_ids(conn: Connection, ticket_id: int) -> tuple[str | None, list[str]]:
    """The ticket's newest Message-ID and the chain before it, for In-Reply-To and References."""
    store.flush_behind(conn, [ticket_id])  # our mail of this batch is of the chain
    ids = [row.message_id for row in conn.execute(_THREAD, {"tid": ticket_id})]
    return (ids[0] if ids else None), list(reversed(ids))


def _thread_root(ticket: TicketRow, domain: str) -> str:
    """One made-up parent per ticket, so an agent's client groups all mail about it."""
    return f"<ticket-{ticket.number}@{domain}>"


@dataclass(frozen=True)
class Notifier:
    config: Config
    templates: MailTemplates
    tags: TagFormat

    @classmethod
    def for_config(cls, config: Config) -> Notifier:
        """The daemon's notifier for these settings: their mail templates and ticket tag."""
        return cls(config, MailTemplates(Path(config.templates_dir)), TagFormat(config.tickets.tag_format))

    @cached_property
    def loop_token(self) -> str:
        return self.config.loop_token()

    @cached_property
    def secret(self) -> bytes:
        return self.config.secret_key()

    def send(self, conn: Connection, events: Sequence[Event]) -> list[str | None]:
        """The one notify step: each event as the mail it causes, in order, in the caller's transaction.

        Returns, per event, the Message-ID of a confirmation that went out (None otherwise).
        A ticket's history is read once for all the notices of this step (`notices.reading_once`)."""
        with notices.reading_once(conn):
            return [self.send_one(conn, event) for event in events]

    def send_one(self, conn: Connection, event: Event) -> str | None:
        match event:
            case Confirmation():
                return self.confirmation(conn, event)
            case TicketEvent():
                self.ticket_event(conn, event.ticket, event.event, text=event.text, actor=event.actor,
                                  human=event.human, files=event.files, staff_note=event.staff_note)
            case StaffNotice():
                self.staff_notice(conn, event.ticket, event.to, event.event, event.text)
            case TellStaff():
                self.tell_staff(conn, event.ticket, event.event, event.text, actor=event.actor)
            case StaffDigest():
                self.staff_digest(conn, event.to, event.items)
            case ThirdPartyQuestion():
                self.third_party_question(conn, event.ticket, event.to, event.text, actor=event.actor)
            case AgentResult():
                self.agent_result(conn, event.ticket, event.agent, ok=event.ok, lines=event.lines,
                                  in_reply_to=event.in_reply_to)
            case AdminNotice():
                self.tell_admin(conn, event.subject, event.text)
        return None

    def confirmation(self, conn: Connection, event: Confirmation) -> str | None:
        """Queue the automatic confirmation of a new ticket; returns its Message-ID, or None
        when the suppression list or a mail budget holds it back."""
        ticket, to = event.ticket, event.to
        verdict = allow_automatic(conn, self.config, to=to, ticket_id=ticket.id)
        if not verdict.allowed:
            self.held_back(conn, ticket, "confirmation", to, verdict)
            return None
        rendered = self.templates.render(
            "confirmation", event.language or self.config.tickets.language,
            tag=self.tags.tag(ticket.number), number=ticket.number, subject=ticket.subject,
            customer_name=event.customer_name, link=ticket_link(self.config, ticket.number, to),
            sender_name=self.config.outbox.from_name, missing=event.missing, linked_number=event.linked_number,
            linked_tag=self.tags.tag(event.linked_number) if event.linked_number else "", dropped=event.dropped,
        )
        mail = Outgoing(from_addr=event.mailbox, from_name=self.config.outbox.from_name, to=to,
                        subject=rendered.subject, text=rendered.text, domain=self.config.message_id_domain,
                        loop_token=self.loop_token, in_reply_to=event.in_reply_to, references=event.references)
        root = self._thread_index(mail, ticket.number)
        return self.enqueue(conn, mail, ticket_id=ticket.id, kind="confirmation", thread_root=root)

    # -- events of the lifecycle -------------------------------------------------------------

    def ticket_event(self, conn: Connection, ticket: TicketRow, event: str, *, text: str = "", actor: str = "",
                     human: bool = False, files: Sequence[Attachment] = (), staff_note: str = "") -> list[str]:
        """Send what the notification matrix says for `event`; returns to whom it went.

        `human` marks mail an agent wrote (a reply, a question): it is not automatic, so it
        carries no Auto-Submitted header and passes no budget.
        """
        rule = self.config.notifications[event]
        sent: list[str] = []
        customer = conn.execute(_CUSTOMER, {"cid": ticket.customer_id}).one()
        wants = rule.customer == "always" or (rule.customer == "optout" and not customer.notifications_off)
        if wants and customer.email:
            if self._customer_mail(conn, ticket, customer, event, text=text, human=human, actor=actor,
                                   optout=rule.customer == "optout", files=files):
                sent.append(customer.email)
        if rule.assignee:
            sent.extend(self.tell_staff(conn, ticket, event, "\n\n".join(p for p in (text, staff_note) if p), actor=actor))
        return sent

    def tell_staff(self, conn: Connection, ticket: TicketRow, event: str, text: str, *, actor: str = "") -> list[str]:
        """A notice to the ticket's agent, or to its department's agents while nobody has it."""
        to = [ticket.assignee] if ticket.assignee else [a.address for a in self.config.agents_of(ticket.department)]
        to = [address for address in to if address != actor]
        for address in to:
            self.staff_notice(conn, ticket, address, event, text)
        return to

    def _may_mail(self, conn: Connection, ticket: TicketRow, customer: CustomerRow, event: str, *,
                  human: bool) -> tuple[bool, datetime | None]:
        """Whether this mail to the customer goes out, and not before when."""
        if human:
            return not suppressed(conn, customer.email), None
        # A person's action caused this mail: a budget may delay it, never withhold it.
        verdict = allow_automatic(conn, self.config, to=customer.email, ticket_id=ticket.id, defer=True)
        if not verdict.allowed or verdict.not_before is not None:
            self.held_back(conn, ticket, event, customer.email, verdict)
        return verdict.allowed, verdict.not_before

    def _customer_mail(self, conn: Connection, ticket: TicketRow, customer: CustomerRow, event: str, *, text: str, human: bool,
                       actor: str, optout: bool, files: Sequence[Attachment] = ()) -> bool:
        go, not_before = self._may_mail(conn, ticket, customer, event, human=human)
        if not go:
            return False
        language = customer.language or ticket.language or self.config.tickets.language
        extra: dict[str, str] = {}
        context: dict[str, Any] = {"unsubscribe_link": "", "feedback": []}
        if optout:
            link = unsubscribe_link(self.config, customer.email)
            context["unsubscribe_link"] = link
            # RFC 8058: a mail client's one-click unsubscribe POSTs to this address.
            extra["List-Unsubscribe"] = f"<{link}>"
            extra["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if event == "resolved":
            context["feedback"] = sorted(feedback_links(self.config, ticket.number).items())
        # Mail an agent wrote is signed with their name, from our mailbox: never their address.
        agent = self.config.agent(actor) if human and actor else None
        rendered = self.templates.render(
            event, language, tag=self.tags.tag(ticket.number), number=ticket.number, subject=ticket.subject,
            customer_name=customer.name, link=ticket_link(self.config, ticket.number, customer.email),
            status=display_name(Status(ticket.status), language), text=text,
            sender_name=agent.name if agent else self.config.outbox.from_name, **context,
        )
        last, references = _thread_ids(conn, ticket.id)
        mail = Outgoing(from_addr=ticket.mailbox or self.config.mailboxes[0], from_name=self.signed_by(agent),
                        to=customer.email, subject=rendered.subject, text=rendered.text,
                        domain=self.config.message_id_domain, in_reply_to=last, references=references,
                        automatic=not human, extra_headers=extra, loop_token=self.loop_token,
                        attachments=[(f.filename or "attachment", f.content_type, f.payload) for f in files])
        root = self._thread_index(mail, ticket.number)
        self.enqueue(conn, mail, ticket_id=ticket.id, kind=event, not_before=not_before, thread_root=root)
        return True

    def _thread_index(self, mail: Outgoing, number: int) -> str:
        """Give customer mail the ticket's Thread-Index (Outlook threads by it); returns its root."""
        header, root = thread_index(self.secret, number)
        mail.extra_headers["Thread-Index"] = header
        return root

    def held_back(self, conn: Connection, ticket: TicketKey, kind: str, to: str, verdict: Verdict) -> None:
        """A mail a budget or the suppression list delayed or stopped: an event, and the admin told."""
        if verdict.allowed and verdict.not_before is not None:
            event, what = "mail_deferred", f"{kind} to {to} deferred until {verdict.not_before:%Y-%m-%d %H:%M:%S} UTC"
        else:
            event, what = "mail_held_back", f"{kind} to {to} not sent"
        store.add_event(conn, ticket.id, event, actor="postdesk", detail=f"{what}: {verdict.reason}")
        if verdict.report:
            self.tell_admin(conn, f"Automatic mail to {to} held back",
                            f"Postdesk held back automatic mail to {to} (ticket {ticket.number}):\n"
                            f"{verdict.reason}.\n\nThis usually means a mail loop with a robot that ignores "
                            f"Auto-Submitted. Resolutions, questions and status mail are deferred and go out when "
                            f"the budget refills; confirmations wait for the next mail. Nothing is lost: the "
                            f"customer's messages are all stored on their tickets, and every held-back mail is an "
                            f"event on its ticket.\n")

    def signed_by(self, agent: Agent | None) -> str:
        """The display name of mail an agent wrote: "Eva Lind via Postdesk"."""
        return f"{agent.name} via {self.config.outbox.from_name}" if agent else self.config.outbox.from_name

    def reply_to(self, ticket: TicketRow, address: str, purpose: Purpose) -> str:
        """The signed address a reply from `address` about `ticket` must go to."""
        mailbox = ticket.mailbox or self.config.mailboxes[0]
        return reply_address(self.config.secret_key(), mailbox, ticket.number, address, purpose)

    def staff_reader(self, address: str) -> tuple[str, str]:
        """The language and time zone of staff mail to `address`."""
        agent = self.config.agent(address)
        return ((agent.language if agent else None) or self.config.tickets.language,
                (agent.timezone if agent else None) or self.config.tickets.timezone)

    def staff_notice(self, conn: Connection, ticket: TicketRow | None, to: str, event: str, text: str | Text) -> None:
        """A short mail to an agent, manager or the support lead (escalations, digests, reminders).

        About a ticket, it quotes the ticket's latest messages, threads with the other mail
        about that ticket in the agent's client, and (to a configured agent) carries a signed
        Reply-To, so that answering it works the ticket (`gateway.agents`).
        """
        lang, zone = self.staff_reader(to)
        words = text(lang, zone) if callable(text) else text
        title = gettext(lang, _title(event))
        if ticket is None:
            self._staff_mail(conn, None, to, "staff_notice", f"staff:{event}", title=title, text=words)
            return
        self._staff_mail(conn, ticket, to, "agent_notice", f"staff:{event}", title=title, text=words,
                         history=notices.history(conn, ticket, self.config.agent_mail.history_messages,
                                                 self.config.web.base_url, lang, zone))

    def staff_digest(self, conn: Connection, to: str, items: Sequence[tuple[TicketRow, str, str | Text]]) -> None:
        """Several notices about tickets for one person as one mail, each with its ticket's link
        and reply address (scheduler sweeps), in that person's language and zone."""
        agent = self.config.agent(to) is not None
        lang, zone = self.staff_reader(to)
        # Each ticket keeps its own signed reply address: writing to it works that ticket.
        listed = [{"title": gettext(lang, _title(event)), "tag": self.tags.tag(ticket.number), "subject": ticket.subject,
                   "text": text(lang, zone) if callable(text) else text, "link": self.staff_link(ticket.number),
                   "reply": self.reply_to(ticket, to, "agent") if agent else ""}
                  for ticket, event, text in items]
        self._staff_mail(conn, None, to, "staff_digest", "staff:sweep", items=listed)

    def staff_link(self, number: int) -> str:
        """The ticket's page for staff (who sign in; no token in a mail that lists many tickets)."""
        return f"{self.config.web.base_url.rstrip('/')}/tickets/{number}"

    def agent_result(self, conn: Connection, ticket: TicketRow, agent: Agent, *, ok: bool, lines: list[str],
                     in_reply_to: str | None) -> None:
        """What an agent's mail did to the ticket, or why none of it was done."""
        self._staff_mail(conn, ticket, agent.address, "agent_command_result", "agent:result" if ok else "agent:error",
                         ok=ok, lines=lines, in_reply_to=in_reply_to)

    def _staff_mail(self, conn: Connection, ticket: TicketRow | None, to: str, template: str, kind: str, *,
                    in_reply_to: str | None = None, **context: Any) -> None:
        agent = self.config.agent(to)
        language = (agent.language if agent else None) or self.config.tickets.language
        rendered = self.templates.render(
            template, language, **context,
            tag=self.tags.tag(ticket.number) if ticket is not None else "",
            subject=ticket.subject if ticket is not None else "",
            number=ticket.number if ticket is not None else None,
            status=display_name(Status(ticket.status), language) if ticket is not None else "",
            reply_by_mail=agent is not None and ticket is not None,
            sender_name=self.config.outbox.from_name,
        )
        threading: dict[str, Any] = {}
        if ticket is not None:
            root = _thread_root(ticket, self.config.message_id_domain)
            threading = {"in_reply_to": in_reply_to or root, "references": [root],
                         "reply_to": self.reply_to(ticket, to, "agent") if agent else None}
        mail = Outgoing(from_addr=(ticket.mailbox if ticket is not None else "") or self.config.mailboxes[0],
                        from_name=self.config.outbox.from_name, to=to, subject=rendered.subject, text=rendered.text,
                        domain=self.config.message_id_domain, loop_token=self.loop_token,
                        auto_submitted="auto-generated", **threading)
        # The row names the ticket it is about (known-source removal finds it by that), but the
        # mail is not one of the customer's thread: no message row.
        self.enqueue(conn, mail, ticket_id=ticket.id if ticket is not None else None, kind=kind[:32], on_ticket=False)

    def third_party_question(self, conn: Connection, ticket: TicketRow, to: str, text: str, *, actor: str) -> str:
        """Ask `to` (a supplier, another department) about the ticket; their answer threads back."""
        agent = self.config.agent(actor)
        rendered = self.templates.render(
            "third_party_question", ticket.language or self.config.tickets.language, tag=self.tags.tag(ticket.number),
            number=ticket.number, subject=ticket.subject, text=text,
            sender_name=agent.name if agent else self.config.outbox.from_name)
        root = _thread_root(ticket, self.config.message_id_domain)
        mail = Outgoing(from_addr=ticket.mailbox or self.config.mailboxes[0], from_name=self.signed_by(agent), to=to,
                        subject=rendered.subject, text=rendered.text, domain=self.config.message_id_domain,
                        in_reply_to=root, references=[root], reply_to=self.reply_to(ticket, to, "third_party"),
                        automatic=False, loop_token=self.loop_token)
        return self.enqueue(conn, mail, ticket_id=ticket.id, kind="third_party_question")

    def tell_admin(self, conn: Connection, subject: str, text: str) -> None:
        """A notice to `admin_address` (outside the budgets: it is one mail per event)."""
        if not self.config.admin_address:
            return
        mail = Outgoing(from_addr=self.config.mailboxes[0], from_name=self.config.outbox.from_name,
                        to=self.config.admin_address, subject=f"[Postdesk] {subject}", text=text,
                        domain=self.config.message_id_domain, loop_token=self.loop_token,
                        auto_submitted="auto-generated")
        self.enqueue(conn, mail, ticket_id=None, kind="admin")

    def enqueue(self, conn: Connection, mail: Outgoing, *, ticket_id: int | None, kind: str,
                on_ticket: bool = True, not_before: datetime | None = None, thread_root: str = "") -> str:
        """Write the mail to the outbox (and onto its ticket); returns its Message-ID.

        `not_before`: a deferred mail, which the sender leaves alone until then."""
        raw = mail.build().as_bytes()
        now = utcnow()
        row = {
            "created_at": now, "next_attempt_at": not_before or now, "ticket_id": ticket_id, "kind": kind,
            "mail_from": mail.from_addr, "rcpt_to": mail.to, "message_id": mail.message_id, "raw": raw,
            "state": "pending", "attempts": 0, "last_error": "",
        }
        copy = None
        if ticket_id is not None and on_ticket:
            copy = {
                "ticket_id": ticket_id, "direction": "out", "kind": kind, "author": mail.from_addr,
                "message_id": mail.message_id, "subject": mail.subject, "text": mail.text, "body_hash": "",
                # The copy of a mail we sent: the history shows the words (agent's reply, the
                # question asked) once, from their own message row; this row threads replies.
                "thread_by": "", "created_at": now, "visibility": "mail", "thread_root": thread_root,
            }
        store.queue_mail(conn, row, copy)
        return mail.message_id
