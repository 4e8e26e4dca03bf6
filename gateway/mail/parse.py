"""Turning raw bytes into a `ParsedMail`: mail-parser first, the stdlib `email` package as fallback.

Nothing here may raise on bad input: a message that neither parser can read still becomes a
`ParsedMail` with what could be recovered and a list of defects, so that a later stage decides
whether to keep it on a ticket or quarantine it.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr

import mailparser

from gateway.mail import feed

log = logging.getLogger("gateway.parse")
_MSGID = re.compile(r"<[^<>\s]+>")
_BODY_SPLIT = re.compile(rb"\r?\n\r?\n")


@dataclass
class Attachment:
    filename: str
    content_type: str
    payload: bytes
    content_id: str | None = None


@dataclass
class ParsedMail:
    """What later stages need from a message; every field is usable even for broken input."""

    message: Message
    from_addr: str
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    message_id: str
    in_reply_to: list[str]
    references: list[str]
    text_plain: str
    text_html: str
    body_hash: str
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    parser: str = "mail-parser"

    def header(self, name: str) -> str:
        return raw_header(self.message, name)


def raw_headers(message: Message, name: str) -> list[str]:
    """Every value of header `name`, decoded; 8-bit bytes are guessed, not replaced by U+FFFD.

    The compat32 policy hands out undecodable header bytes wrapped as "unknown-8bit", which
    prints as replacement characters; the raw items keep the bytes for `decode_text`.
    """
    lowered = name.lower()
    values = []
    for key, value in message.raw_items():
        if key.lower() == lowered:
            values.append(decode_text(value if isinstance(value, str) else str(value)))
    return values


def raw_header(message: Message, name: str) -> str:
    found = raw_headers(message, name)
    return found[0] if found else ""


def decode_text(value: str) -> str:
    """Decode RFC 2047 encoded words and raw 8-bit header bytes; never raise."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        # The compat32 parser keeps undecodable header bytes as surrogates: guess their charset.
        value = decode_payload(value.encode("utf-8", "surrogateescape"), None)
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (UnicodeError, LookupError, ValueError, TypeError):
        return value


def message_ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


def body_hash(raw: bytes) -> str:
    """Hash of the body only, line endings folded: an MTA's retry adds Received headers, not body."""
    parts = _BODY_SPLIT.split(raw, maxsplit=1)
    body = parts[1] if len(parts) == 2 else raw
    return hashlib.sha256(body.replace(b"\r\n", b"\n").rstrip()).hexdigest()


def _addresses(message: Message, name: str) -> list[str]:
    return [addr.lower() for _, addr in getaddresses(raw_headers(message, name)) if "@" in addr]


def decode_payload(payload: bytes, charset: str | None) -> str:
    """Bytes to text without losing any: the declared charset, else UTF-8, else Windows-1252.

    Mislabelled mail is common (Windows-1252 sent as ISO-8859-1 or as nothing at all, UTF-8
    labelled Latin-1); a strict attempt per candidate means a wrong label never cuts a body
    short, and the last resort maps every byte.
    """
    candidates = [c for c in (charset, "utf-8", "cp1252") if c]
    for candidate in dict.fromkeys(candidates):
        try:
            return payload.decode(_charset_alias(candidate))
        except (UnicodeDecodeError, LookupError):
            continue
    return payload.decode("latin-1")


def _charset_alias(charset: str) -> str:
    # Senders write charsets Python does not know by that name.
    lowered = charset.strip().strip('"').lower()
    return {"unicode-1-1-utf-7": "utf-7", "x-unknown": "utf-8", "us-ascii": "utf-8",
            "iso-8859-8-i": "iso-8859-8", "windows-874": "cp874", "ks_c_5601-1987": "euc-kr",
            "gb2312": "gb18030"}.get(lowered, lowered)


def _part_payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # broken transfer encodings raise from deep inside the stdlib
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _walk_parts(part: Message, plain: list[str], html: list[str], attachments: list[Attachment]) -> None:
    """Collect text and attachments; a nested message/rfc822 is kept whole as an attachment."""
    ctype = part.get_content_type()
    if ctype == "message/rfc822" or (ctype.startswith("message/") and part.is_multipart() and ctype != "message/delivery-status"):
        inner = part.get_payload()
        data = inner[0].as_bytes() if isinstance(inner, list) and inner else _part_payload(part)
        name = decode_text(part.get_filename() or "") or "forwarded-message.eml"
        attachments.append(Attachment(name, "message/rfc822", data, None))
        return
    if part.is_multipart():
        children = part.get_payload()
        for child in children if isinstance(children, list) else []:
            _walk_parts(child, plain, html, attachments)
        return
    filename = part.get_filename()
    disposition = part.get_content_disposition()
    content_id = part.get("Content-ID")
    payload = _part_payload(part)
    is_text = ctype in ("text/plain", "text/html")
    if filename or disposition == "attachment" or (not is_text and not ctype.startswith("multipart/")):
        name = decode_text(filename or "") or _default_name(ctype)
        if name.lower() == "winmail.dat" or ctype == "application/ms-tnef":
            _expand_tnef(payload, plain, html, attachments, name)
            return
        cid = str(content_id).strip() if content_id else None
        attachments.append(Attachment(name, ctype, payload, cid))
        return
    text = decode_payload(payload, part.get_content_charset())
    (plain if ctype == "text/plain" else html).append(text)


def _default_name(ctype: str) -> str:
    main, _, sub = ctype.partition("/")
    return f"{main or 'part'}.{sub or 'bin'}"


def _expand_tnef(data: bytes, plain: list[str], html: list[str], attachments: list[Attachment], name: str) -> None:
    """Unpack Outlook's winmail.dat into its files and body; keep it as it is when that fails."""
    try:
        from tnefparse import TNEF

        tnef = TNEF(data)
    except Exception as exc:  # tnefparse raises bare ValueErrors and struct errors on junk
        log.info("could not unpack %s (%s); kept as an attachment", name, exc)
        attachments.append(Attachment(name, "application/ms-tnef", data, None))
        return
    for item in tnef.attachments:
        filename = item.long_filename() or item.name or "attachment"
        if isinstance(filename, bytes):
            filename = filename.decode("utf-8", "replace")
        attachments.append(Attachment(str(filename).strip("\x00"), "application/octet-stream", item.data, None))
    body = getattr(tnef, "body", None)
    if body:
        plain.append(body.decode("cp1252", "replace") if isinstance(body, bytes) else str(body))
    html_body = getattr(tnef, "htmlbody", None)
    if html_body:
        html.append(html_body.decode("utf-8", "replace") if isinstance(html_body, bytes) else str(html_body))


def _stdlib_parts(message: Message) -> tuple[str, str, list[Attachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    _walk_parts(message, plain, html, attachments)
    return "\n".join(plain), "\n".join(html), attachments


def normalise_line_endings(raw: bytes) -> bytes:
    """CR-only mail (old Macs, some gateways) reads as one long line; make it CRLF."""
    if b"\r" in raw and b"\n" not in raw:
        return raw.replace(b"\r", b"\r\n")
    if b"\r" in raw.replace(b"\r\n", b""):
        return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return raw


def _base(message: Message, raw: bytes, subject: str, defects: list[str], parser: str) -> ParsedMail:
    name, addr = parseaddr(raw_header(message, "From"))
    return ParsedMail(
        message=message,
        from_addr=addr.lower() if "@" in addr else "",
        from_name=name,
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        subject=subject,
        message_id=(message_ids(raw_header(message, "Message-ID")) or [""])[0],
        in_reply_to=message_ids(raw_header(message, "In-Reply-To")),
        references=message_ids(" ".join(raw_headers(message, "References"))),
        text_plain="",
        text_html="",
        body_hash=body_hash(raw),
        defects=defects,
        parser=parser,
    )


def parse(raw: bytes) -> ParsedMail:
    """Parse with mail-parser; fall back to the stdlib parser for what mail-parser cannot read."""
    raw = normalise_line_endings(raw)
    try:
        mp = mailparser.MailParser(feed.message_from_bytes(raw))  # chunked: see gateway.mail.feed
        parsed = _base(mp.message, raw, raw_header(mp.message, "Subject"), [str(d) for d in mp.defects], "mail-parser")
        parsed.text_plain, parsed.text_html, parsed.attachments = _stdlib_parts(mp.message)
        return parsed
    except Exception as exc:  # mail-parser raises many kinds on broken input; all mean "fall back".
        log.info("mail-parser could not read the message (%s); using the stdlib parser", exc)
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        defects = [type(d).__name__ for d in message.defects] + [f"mail-parser: {exc}"]
        parsed = _base(message, raw, raw_header(message, "Subject"), defects, "stdlib")
        parsed.text_plain, parsed.text_html, parsed.attachments = _stdlib_parts(message)
        return parsed
