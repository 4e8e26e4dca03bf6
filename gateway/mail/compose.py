"""Outgoing MIME: headers that thread in the customer's client and keep auto-responders quiet.

Built with the stdlib's compat32 classes: the modern policy parses every header it is given back
into a tree, which made composing five times slower on the hot path for no gain here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email import encoders
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, format_datetime

from gateway.db.models import utcnow

# Set on everything we send, so that our own mail coming back is recognised as a loop.
LOOP_HEADER = "X-Postdesk-Loop"


_UTF8 = Charset("utf-8")
# Quoted-printable keeps mostly-ASCII Swedish and Romanian text readable in the raw message.
_UTF8.body_encoding = QP


def _header(value: str) -> str:
    """RFC 2047-encode a header value only when it is not plain ASCII."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def new_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


@dataclass
class Outgoing:
    """A mail to send; `automatic` marks mail no human wrote (confirmations, notifications)."""

    from_addr: str
    from_name: str
    to: str
    subject: str
    text: str
    domain: str
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    reply_to: str | None = None
    automatic: bool = True
    # RFC 3834: "auto-replied" answers a mail; "auto-generated" (staff notices) answers none.
    auto_submitted: str = "auto-replied"
    html: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    # Value of the loop header; our own mail coming back is recognised by it.
    loop_token: str = ""
    # Files to attach: (filename, content type, bytes).
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)

    def build(self) -> Message:
        msg: Message = MIMEText(self.text, "plain", _UTF8)
        if self.html:
            alternative = MIMEMultipart("alternative")
            alternative.attach(msg)
            alternative.attach(MIMEText(self.html, "html", _UTF8))
            msg = alternative
        if self.attachments:
            msg = _with_files(msg, self.attachments)
        self.message_id = self.message_id or new_message_id(self.domain)
        msg["From"] = formataddr((self.from_name, self.from_addr), charset="utf-8")
        msg["To"] = self.to
        msg["Subject"] = _header(self.subject)
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = self.message_id
        if self.in_reply_to:
            msg["In-Reply-To"] = self.in_reply_to
        refs = [ref for ref in self.references if ref] + ([self.in_reply_to] if self.in_reply_to else [])
        if refs:
            # Keep the newest references; some servers refuse very long header lines.
            msg["References"] = " ".join(dict.fromkeys(refs[-20:]))
        if self.reply_to:
            msg["Reply-To"] = self.reply_to
        if self.automatic:
            # RFC 3834 plus the Exchange header: other robots must not answer us.
            msg["Auto-Submitted"] = self.auto_submitted
            msg["X-Auto-Response-Suppress"] = "All"
        msg[LOOP_HEADER] = self.loop_token or self.domain
        for name, value in self.extra_headers.items():
            msg[name] = _header(value)
        return msg


def _with_files(body: Message, files: list[tuple[str, str, bytes]]) -> Message:
    mixed = MIMEMultipart("mixed")
    mixed.attach(body)
    for name, content_type, data in files:
        maintype, _, subtype = content_type.partition("/")
        part = MIMEBase(maintype or "application", subtype or "octet-stream")
        part.set_payload(data)
        encoders.encode_base64(part)
        # RFC 2231 for names beyond ASCII ("Offert för källaren.pdf").
        part.add_header("Content-Disposition", "attachment", filename=name if name.isascii() else ("utf-8", "", name))
        mixed.attach(part)
    return mixed
