"""Mail that events cause: rendered from templates and written to the outbox in the caller's transaction.

Each outgoing mail is also stored as an outbound `Message` on its ticket, so that a customer who
answers it (In-Reply-To: our Message-ID) is threaded back onto the right ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Connection, insert

from gateway.config import Config
from gateway.db.models import Message, Outbox, utcnow
from gateway.followup import TagFormat
from gateway.guard import allow_automatic
from gateway.mail.compose import Outgoing
from gateway.templating import MailTemplates
from gateway.tickets.store import TicketRef


INSERT_OUTBOX = insert(Outbox.__table__)  # type: ignore[arg-type]
INSERT_MESSAGE = insert(Message.__table__)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Notifier:
    config: Config
    templates: MailTemplates
    tags: TagFormat

    @cached_property
    def loop_token(self) -> str:
        return self.config.loop_token()

    def ticket_link(self, ticket: TicketRef) -> str:
        return f"{self.config.web.base_url.rstrip('/')}/tickets/{ticket.number}"

    def confirmation(
        self,
        conn: Connection,
        ticket: TicketRef,
        *,
        to: str,
        customer_name: str,
        language: str | None,
        mailbox: str,
        in_reply_to: str | None,
        references: list[str],
        missing: list[str] | None = None,
        linked_number: int | None = None,
    ) -> str | None:
        """Queue the automatic confirmation of a new ticket; returns its Message-ID, or None
        when the suppression list or a mail budget holds it back."""
        verdict = allow_automatic(conn, self.config, to=to, ticket_id=ticket.id)
        if not verdict.allowed:
            if verdict.report:
                self.tell_admin(conn, f"Automatic mail to {to} held back",
                                f"Postdesk stopped sending automatic mail to {to} (ticket {ticket.number}):\n"
                                f"{verdict.reason}.\n\nThis usually means a mail loop with a robot that ignores "
                                f"Auto-Submitted. Mail resumes by itself when the budget refills; nothing is lost: "
                                f"the customer's messages are all stored on their tickets.\n")
            return None
        tag = self.tags.tag(ticket.number)
        rendered = self.templates.render(
            "confirmation",
            language or self.config.tickets.language,
            tag=tag,
            number=ticket.number,
            subject=ticket.subject,
            customer_name=customer_name,
            link=self.ticket_link(ticket),
            sender_name=self.config.outbox.from_name,
            missing=missing or [],
            linked_number=linked_number,
            linked_tag=self.tags.tag(linked_number) if linked_number else "",
        )
        mail = Outgoing(
            from_addr=mailbox,
            from_name=self.config.outbox.from_name,
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            domain=self.config.message_id_domain,
            loop_token=self.loop_token,
            in_reply_to=in_reply_to,
            references=references,
        )
        return self.enqueue(conn, mail, ticket_id=ticket.id, kind="confirmation")

    def tell_admin(self, conn: Connection, subject: str, text: str) -> None:
        """A notice to `admin_address` (outside the budgets: it is one mail per event)."""
        if not self.config.admin_address:
            return
        mail = Outgoing(from_addr=self.config.mailboxes[0], from_name=self.config.outbox.from_name,
                        to=self.config.admin_address, subject=f"[Postdesk] {subject}", text=text,
                        domain=self.config.message_id_domain, loop_token=self.loop_token)
        self.enqueue(conn, mail, ticket_id=None, kind="admin")

    def enqueue(self, conn: Connection, mail: Outgoing, *, ticket_id: int | None, kind: str) -> str:
        """Write the mail to the outbox (and onto its ticket); returns its Message-ID."""
        raw = mail.build().as_bytes()
        now = utcnow()
        conn.execute(INSERT_OUTBOX, {
            "created_at": now, "next_attempt_at": now, "ticket_id": ticket_id, "kind": kind,
            "mail_from": mail.from_addr, "rcpt_to": mail.to, "message_id": mail.message_id, "raw": raw,
            "state": "pending", "attempts": 0, "last_error": "",
        })
        if ticket_id is not None:
            conn.execute(INSERT_MESSAGE, {
                "ticket_id": ticket_id, "direction": "out", "kind": kind, "author": mail.from_addr,
                "message_id": mail.message_id, "subject": mail.subject, "text": mail.text, "body_hash": "",
                "thread_by": "", "created_at": now,
            })
        return mail.message_id
