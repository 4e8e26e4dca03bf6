"""Mail to `postmaster@` our domain: accepted (RFC 5321 requires it) and passed to the admin.

It never opens a ticket: it is about the mail system, not a customer's request. The message is
forwarded whole, as a `message/rfc822` attachment, to `admin_address` through the outbox (and
the admin's mail budget); without an admin address it is only kept, as every inbound message
is, with its raw bytes in the inbound queue.
"""

from __future__ import annotations

from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.policy import compat32
from email.utils import format_datetime, formataddr

from sqlalchemy import Connection, insert

from gateway.clock import utcnow
from gateway.config import Config
from gateway.db.tables import OUTBOX
from gateway.guard import allow_automatic
from gateway.mail.compose import LOOP_HEADER, new_message_id

NAME = "postmaster"


def postmaster_addresses(config: Config) -> frozenset[str]:
    """`postmaster` alone and `postmaster@` each domain we receive mail for."""
    domains = {box.rpartition("@")[2] for box in config.mailboxes} | {config.domain.lower()}
    return frozenset({NAME} | {f"{NAME}@{domain}" for domain in domains})


class Postmaster:
    def __init__(self, config: Config, loop_token: str) -> None:
        self.config = config
        self.loop_token = loop_token
        self.addresses = postmaster_addresses(config)

    def take(self, conn: Connection, *, rcpt_to: list[str], kind: str, sender: str, raw: bytes,
             inbound_id: int) -> tuple[list[str], str] | None:
        """Forward the postmaster's copy: the recipients left, and what was done; None: not ours."""
        if not any(r.lower() in self.addresses for r in rcpt_to):
            return None
        left = [r for r in rcpt_to if r.lower() not in self.addresses]
        if kind == "loop":
            note = "mail to postmaster: our own mail coming back, not forwarded"
        elif not self.config.admin_address:
            note = "mail to postmaster kept (no admin_address to forward it to)"
        elif not allow_automatic(conn, self.config, to=self.config.admin_address, ticket_id=None).allowed:
            note = "mail to postmaster kept: the admin's mail budget is used up"
        else:
            self._forward(conn, sender or "unknown sender", raw, inbound_id)
            note = f"mail to postmaster forwarded to {self.config.admin_address}"
        return left, note

    def _forward(self, conn: Connection, sender: str, raw: bytes, inbound_id: int) -> None:
        outer = MIMEMultipart("mixed")
        outer["From"] = formataddr((self.config.outbox.from_name, self.config.mailboxes[0]))
        outer["To"] = self.config.admin_address
        outer["Subject"] = f"[Postdesk] Mail to postmaster from {sender}"[:200]
        outer["Date"] = format_datetime(utcnow())
        message_id = new_message_id(self.config.message_id_domain)
        outer["Message-ID"] = message_id
        outer["Auto-Submitted"] = "auto-forwarded"
        outer[LOOP_HEADER] = self.loop_token
        outer.attach(MIMEText(f"Postdesk received this mail for postmaster (inbound {inbound_id}) "
                              f"from {sender}; it is attached unchanged.\n", "plain", "utf-8"))
        original: Message = BytesParser(policy=compat32).parsebytes(raw)
        outer.attach(MIMEMessage(original))
        now = utcnow()
        conn.execute(insert(OUTBOX), {
            "created_at": now, "next_attempt_at": now, "ticket_id": None, "kind": "postmaster",
            "mail_from": self.config.mailboxes[0], "rcpt_to": self.config.admin_address,
            "message_id": message_id, "raw": outer.as_bytes(), "state": "pending", "attempts": 0,
            "last_error": "",
        })
