"""How one message of a ticket is shown: its new words first, the rest folded away.

This module owns what the ticket page makes of a message row: the label that says what it is
(`gateway.tickets.kinds`), the new text with the whole message (quoted history, or the HTML as
sent) behind a `<details>` that one click opens, inline `cid:` images pointed at the ticket's
own attachment URLs (the page's CSP allows images from itself only), which attachments get an
image preview, the trace as rows of a table, and the customer's personal links (ticket,
sign-in, feedback, unsubscribe) taken out of the copies of mail we sent them, since anyone who
reads the page could otherwise act as that customer.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

from markupsafe import Markup

from gateway.db.tables import AnyRow
from gateway.i18n.catalogues import N_
from gateway.mail.htmltext import display_html
from gateway.tickets import kinds

# Types a browser shows in an <img> without running anything (no SVG: it may hold scripts).
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_CID_SRC = re.compile(r'src="cid:([^"]*)"', re.IGNORECASE)
# Paths of links that act for whoever holds them: never shown on a page others read.
_PERSONAL = ("t", "signin", "feedback", "unsubscribe")
REDACTED = N_("[personal link of the customer, not shown]")
_TRACE_LABELS = {
    "kind": N_("Kind of mail"),
    "reasons": N_("Why"),
    "proof": N_("Proof of the sender"),
    "thread": N_("Found its ticket by"),
    "thread_note": N_("How"),
    "rules": N_("Rules matched"),
    "department_from": N_("Department chosen by"),
    "notes": N_("Notes"),
}


@dataclass
class MessageView:
    row: AnyRow
    label: str
    text: str
    whole: str
    html: Markup | None
    attachments: list[AnyRow]
    trace: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def internal(self) -> bool:
        return bool(self.row.visibility == "internal" or self.row.direction == "note")

    @property
    def sent_copy(self) -> bool:
        return kinds.is_sent_copy(self.row)

    def preview(self, attachment: AnyRow) -> bool:
        return str(attachment.content_type).split(";", 1)[0].strip().lower() in PREVIEW_TYPES


def personal_links(base_url: str) -> re.Pattern[str]:
    base = re.escape(base_url.rstrip("/"))
    return re.compile(rf"{base}/(?:{'|'.join(_PERSONAL)})/\S+")


def inline_images(cleaned: str, number: int, files: list[AnyRow]) -> str:
    """`src="cid:…"` of sanitised HTML pointed at this ticket's attachment URL; unknown ones dropped."""
    by_cid = {str(f.content_id).strip("<> "): f.id for f in files if getattr(f, "content_id", None)}

    def point(match: re.Match[str]) -> str:
        found = by_cid.get(html.unescape(match.group(1)).strip("<> "))
        return f'src="/tickets/{number}/attachments/{found}"' if found else 'src=""'

    return _CID_SRC.sub(point, cleaned)


def trace_rows(raw: str) -> list[tuple[str, list[str]]]:
    """The trace as (label, lines): lists one item a line, mappings as "key: value"."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return [(N_("Trace"), [raw])]
    if not isinstance(data, dict):
        return [(N_("Trace"), [json.dumps(data, ensure_ascii=False)])]
    rows = []
    for key, value in data.items():
        lines = _lines(value)
        if lines:
            rows.append((_TRACE_LABELS.get(str(key), str(key)), lines))
    return rows


def _lines(value: object) -> list[str]:
    if value in (None, "", [], {}):
        return []
    if isinstance(value, dict):
        return [f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in value.items()
                if v not in (None, "", [])]
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


def message_view(row: AnyRow, files: list[AnyRow], *, number: int, base_url: str, internal: bool,
                 redacted: str) -> MessageView:
    """`row` as the page shows it; `redacted` is what stands in for a personal link (translated)."""
    links = personal_links(base_url)
    sent_copy = kinds.is_sent_copy(row)

    def safe(text: str) -> str:
        return links.sub(redacted, text) if sent_copy else text

    text, whole = safe(row.text or ""), safe(row.body or "")
    # Sanitised once when the mail was processed (older rows are cleaned here).
    cleaned = display_html(row.html, bool(getattr(row, "html_sanitised", False))) if row.html else ""
    markup = Markup(inline_images(cleaned, number, files)) if cleaned and not sent_copy else None
    # The whole message is worth a fold only when it says more than the new words.
    if whole.strip() == text.strip():
        whole = ""
    return MessageView(row, kinds.label(row), text, whole, markup, files, trace_rows(row.trace) if internal else [])
