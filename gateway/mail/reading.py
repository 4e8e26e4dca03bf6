"""What Postdesk reads in one message, as a plain dict: the mail-only part of `postdesk route`.

Sender (address as written, display name, where it was found), subject, kind and reasons,
whether an automatic answer may be sent, body text, the HTML as text, the new text and
signature, attachments with their hashes. Only `gateway.mail` modules are used, so reading a
folder of mail needs no configuration, database or rules and starts quickly.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.mail.classify import classify
from gateway.mail.parse import ParsedMail, parse
from gateway.mail.quotes import reply_of


def read_mail(raw: bytes, *, envelope: str | None = None, own_domains: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The report of one message; `envelope` "" or "<>" is the null sender, None unknown."""
    mail = parse(raw, envelope=envelope or None if envelope != "<>" else None)
    result = classify(mail.message, mail_from=None if envelope is None else envelope.strip("<>"),
                      own_domains=own_domains)
    return {**mail_facts(mail), "kind": result.kind, "reasons": result.reasons,
            "automatic": result.kind != "customer", "may_auto_answer": result.may_auto_answer,
            "no_answer_reasons": list(result.no_answer_reasons),
            "quarantine": "no sender: neither a From address nor an envelope sender"
            if result.kind == "customer" and not mail.sender.address else ""}


def mail_facts(mail: ParsedMail) -> dict[str, Any]:
    """The parse and strip facts of a parsed message (no classification)."""
    from gateway.mail.htmltext import html_to_text

    html_text = html_to_text(mail.text_html) if mail.text_html else ""
    reply = reply_of(mail.text_plain or None, mail.text_html or None, mail.signs_as)
    return {
        "sender": {"address": mail.sender.address, "name": mail.sender.name, "from": mail.sender.source},
        "subject": mail.subject,
        "message_id": mail.message_id,
        "body": mail.text_plain.strip() or html_text,
        "html_text": html_text,
        "new_text": reply.text,
        "signature": reply.signature,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": len(a.payload),
                         "sha256": hashlib.sha256(a.payload).hexdigest(), "content_id": a.content_id}
                        for a in mail.attachments],
        "defects": mail.defects,
    }
