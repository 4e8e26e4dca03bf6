"""A message's MIME parts: which text is the body, and every other part as a byte-exact attachment.

The body is the inline text/plain and text/html parts without a file name. Every other part is
an attachment: delivery reports (`message/delivery-status`), attached messages (the bytes as
received, named after their subject), text attachments with their bytes as sent (CRLF kept),
HTML parts that are not the body, inline images with their Content-ID, uuencoded files found
in a text body. Transfer encodings are decoded leniently (`gateway.mail.transfer`); each text
part is decoded on its own (`gateway.mail.charsets`), so one bad part never spoils another.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from email.message import Message

from gateway.mail.addresses import header_values
from gateway.mail.charsets import decode
from gateway.mail.headers import decode_value
from gateway.mail.transfer import decode_transfer, uu_bytes, uu_filename

log = logging.getLogger("gateway.parse")
_UU_BLOCK = re.compile(rb"(?m)^begin [0-7]{3,4} [^\r\n]{1,255}\r?\n(?:[\x20-\x60]{1,62}\r?\n){0,1000000}?(?:`?\r?\n)?end[ \t]*(?=\r?\n|\Z)")
_MESSAGE_TYPES = ("message/rfc822", "message/global")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f/\\:*?\"<>|]+")
_BOUNDARY_LINE = re.compile(rb"\r?\n")


@dataclass
class Attachment:
    filename: str
    content_type: str
    payload: bytes
    content_id: str | None = None


@dataclass
class Parts:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    charsets: list[str] = field(default_factory=list)
    # The message whose headers' encoded-words name a charset for body text that declares none
    # (`body_hint`); read only when such text is not ASCII, which is seldom.
    headers: Message | None = None
    # The body's pieces in reading order: ("text/plain" or "text/html", text), a whole
    # multipart/alternative as one piece in its preferred form (see `_in_order`).
    sequence: list[tuple[str, str]] = field(default_factory=list)
    _group: list[tuple[str, str]] | None = None  # the alternative being read, if any
    _group_plain = 0  # where the alternative's plain pieces start in `plain`
    _unsure: bool = False  # a multipart's boundaries were broken: its tree may not be the sender's

    def body_hint(self, payload: bytes) -> str | None:
        """The charset to try for a body part's `payload` after its own: the body's first
        declared charset, else (for 8-bit bytes) the one the headers' encoded-words name."""
        if self.charsets:
            return self.charsets[0]
        if payload.isascii() or self.headers is None:
            return None
        return _header_charset(self.headers)

    def add_text(self, ctype: str, text: str, *, alternative: bool = False) -> None:
        """A piece of body text; `alternative` when it is another form of the piece before."""
        (self.plain if ctype == "text/plain" else self.html).append(text)
        if not alternative:
            (self.sequence if self._group is None else self._group).append((ctype, text))


# A multipart whose boundaries the parser had to guess at: an alternative's parts may come out
# as siblings in the container around it (an inner boundary equal to the outer one, say).
_BOUNDARY_DEFECTS = {"StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect",
                     "MultipartInvariantViolationDefect", "NoBoundaryInMultipartDefect"}
# An encoded-word's charset (RFC 2047, with RFC 2231's language suffix).
_WORD_CHARSET = re.compile(r"=\?([^?*\s]+)(?:\*[^?]*)?\?[bBqQ]\?")


def read_parts(message: Message, raw: bytes | None) -> Parts:
    """Body text and attachments of `message`; `raw` (its bytes) lets attached messages stay exact."""
    parts = Parts(headers=message)
    _walk(message, raw, parts)
    _in_order(parts)
    return parts


def _in_order(parts: Parts) -> None:
    """A body written as a sequence, not as alternatives, reads whole and in order.

    In multipart/mixed each inline text part continues the body: Apple Mail splits its HTML
    around an inline attachment, lists append a plain footer to an HTML-only mail, mailers add a
    plain signature after an HTML message. When such a sequence mixes HTML pieces with plain
    ones, the plain text is every piece in order, the HTML ones as text; otherwise (the common
    case: one alternative, or plain parts only) and where broken boundaries leave the tree in
    doubt, the parts stay as they are.
    """
    kinds = {kind for kind, _ in parts.sequence}
    if len(kinds) < 2 or parts._unsure:
        return
    from gateway.mail.htmltext import html_to_text  # only this rare shape needs it

    parts.plain = [text if kind == "text/plain" else html_to_text(text) for kind, text in parts.sequence]


# What of an HTML part is no text a reader sees: comments (Outlook's conditional XML), the
# head, styles and scripts, each up to its end (or to the end of the part, if it never comes).
_HIDDEN_OPEN = re.compile(r"(?i)<(!--|head\b|style\b|script\b|title\b)")
_HIDDEN_CLOSE = {"!--": "-->", "head": "</head", "style": "</style", "script": "</script", "title": "</title"}
_HTML_TAG = re.compile(r"<[^<>]*>")
_HTML_STUB = re.compile(r"(?i)\bhtml\b.{0,60}\b(?:message|mail|e-mail|email|version|format|client|viewer|browser)\b"
                        r"|\b(?:message|mail|e-mail|email|version|format|client|viewer|browser)\b.{0,60}\bhtml\b")
_STUB_WORDS = 40


def says_less(plain: str, html: str) -> bool:
    """Whether a plain alternative falls short of its HTML form: a stub that points to the
    HTML, or under half of its words (counted roughly: tags and hidden parts left out)."""
    plain_words, html_words = len(plain.split()), _rough_words(html)
    if plain_words <= _STUB_WORDS and html_words > plain_words + 3 and _HTML_STUB.search(plain):
        return True
    return plain_words * 2 < html_words and html_words - plain_words >= 15


def _rough_words(html: str) -> int:
    """Words a reader sees in `html`, roughly; one pass over it, whatever it holds."""
    visible: list[str] = []
    lowered = html.lower()
    at = 0
    while True:
        found = _HIDDEN_OPEN.search(html, at)
        if found is None:
            visible.append(html[at:])
            break
        visible.append(html[at:found.start()])
        end = lowered.find(_HIDDEN_CLOSE[found.group(1).lower()], found.end())
        end = lowered.find(">", end) if end >= 0 else -1
        if end < 0:
            break
        at = end + 1
    return len(_HTML_TAG.sub(" ", " ".join(visible)).split())


def _header_charset(message: Message) -> str | None:
    """The first charset other than ASCII and UTF-8 that the message's encoded-words name: a
    client that writes its subject in ISO-8859-1 writes its body so too, labelled or not."""
    try:
        values = [str(v) for _, v in message.raw_items()]
    except Exception:  # an oddly built message object
        return None
    for value in values:
        for found in _WORD_CHARSET.finditer(value):
            name = found.group(1).lower()
            if name not in ("us-ascii", "ascii", "utf-8", "utf8"):
                return name
    return None


def _walk(part: Message, raw: bytes | None, parts: Parts) -> None:
    ctype = part.get_content_type()
    if ctype.startswith("multipart/") and any(type(d).__name__ in _BOUNDARY_DEFECTS for d in part.defects):
        parts._unsure = True
    if ctype in _MESSAGE_TYPES or (ctype.startswith("message/") and part.is_multipart()):
        _attach_message(part, raw, parts)
        return
    if part.is_multipart():
        children = part.get_payload()
        children = children if isinstance(children, list) else []
        pieces = _raw_children(raw, part.get_boundary(), len(children))
        outermost = ctype == "multipart/alternative" and parts._group is None
        if outermost:
            parts._group, parts._group_plain = [], len(parts.plain)
        for child, piece in zip(children, pieces, strict=True):  # _raw_children gives one per child
            _walk(child, piece, parts)
        if outermost:
            group, parts._group = parts._group or [], None
            preferred = [text for kind, text in group if kind == "text/plain"]
            html = [text for kind, text in group if kind == "text/html"]
            if preferred and html and says_less("\n".join(preferred), "\n".join(html)):
                # The plain form is a stub ("view this mail in HTML") or a fraction of the
                # HTML one: the HTML is the message.
                del parts.plain[parts._group_plain:]
                preferred = []
            if preferred:
                parts.sequence.append(("text/plain", "\n".join(preferred)))
            elif group:
                parts.sequence.append(("text/html", "\n".join(text for _, text in group)))
        return
    _leaf(part, ctype, parts)


def _leaf(part: Message, ctype: str, parts: Parts) -> None:
    payload = payload_bytes(part)
    filename = _filename(part)
    disposition = (part.get_content_disposition() or "").lower()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if ctype.startswith("multipart/"):
        ctype = "text/plain"  # a multipart whose boundary never comes: its text is all there is
    body_like = ctype in ("text/plain", "text/html") and not filename and disposition != "attachment"
    if not body_like:
        name = filename or uu_filename(payload) or _described(part, _default_name(ctype))
        if name.lower() == "winmail.dat" or ctype == "application/ms-tnef":
            from gateway.mail.tnef import expand

            expand(payload, name, parts)
            return
        cid = str(part.get("Content-ID", "")).strip() or None
        parts.attachments.append(Attachment(name, ctype, payload, cid))
        return
    if ctype == "text/plain" and encoding not in ("x-uuencode", "uuencode") and b"begin " in payload:
        payload = _lift_uuencoded(payload, parts)
    charset = part.get_content_charset()
    if charset:
        parts.charsets.append(charset)
    text = decode(payload, charset, hint=parts.body_hint(payload))
    text = text.replace("\r\n", "\n")  # body text in one line-ending style; attachments keep theirs
    parts.add_text(ctype, text)


def payload_bytes(part: Message) -> bytes:
    """The decoded bytes of a leaf part: the raw payload, then its transfer encoding undone."""
    # The stored payload, not get_payload(): compat32 would decode 8-bit bytes with "replace".
    raw = getattr(part, "_payload", None)  # the only way to the bytes as they arrived
    if isinstance(raw, list):
        return b""
    data = raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else bytes(raw or b"")
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip()
    return decode_transfer(data, encoding)


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # a broken RFC 2231 continuation in a parameter
        name = ""
    name = decode_value(str(name)) if name else ""
    return _safe_stem(name) if name else ""


def _safe_stem(text: str, limit: int | None = None) -> str:
    """`text` as (part of) a file name, at most `limit` characters: no path separators or
    control characters."""
    return _UNSAFE_NAME.sub("_", text)[:limit].strip(" ._")


def _described(part: Message, default: str) -> str:
    """A part without a file name named by its Content-Description, the sender's own label for
    it ("Delivery report" -> "Delivery report.txt"), with the extension its type gives; else
    `default`. A description too long to be a label (a sentence) is not a name."""
    values = header_values(part, "Content-Description")
    label = " ".join(decode_value(values[0]).split()) if values else ""
    stem = _safe_stem(label)
    if not stem or len(stem) > 60:
        return default
    extension = "." + default.rpartition(".")[2] if "." in default else ""
    return stem if extension and stem.lower().endswith(extension.lower()) else stem + extension


def _default_name(ctype: str) -> str:
    """A file name for a part that has none: "image.png", "delivery-status.txt", "part.bin"."""
    import mimetypes

    main, _, sub = ctype.partition("/")
    if main == "message" or ctype == "text/rfc822-headers":
        return f"{sub or 'message'}.txt"
    extension = mimetypes.guess_extension(ctype) or f".{sub or 'bin'}"
    return f"{main or 'part'}{extension}"


def _lift_uuencoded(payload: bytes, parts: Parts) -> bytes:
    """Move uuencoded files out of a text body into attachments (old clients still send them)."""
    def lift(match: re.Match[bytes]) -> bytes:
        block = match.group(0)
        name = uu_filename(block) or "attachment.bin"
        parts.attachments.append(Attachment(name, "application/octet-stream", uu_bytes(block), None))
        return b""

    return _UU_BLOCK.sub(lift, payload)


def _attach_message(part: Message, raw: bytes | None, parts: Parts) -> None:
    """An attached message, kept as the bytes that arrived; named after its subject."""
    data = _body_of(raw) if raw is not None else None
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip()
    if data is not None:
        data = decode_transfer(data, encoding)
    else:
        inner = part.get_payload()
        # Without the raw bytes the parsed parts are written out again: the best left to do.
        data = (b"\r\n".join(m.as_bytes() for m in inner if isinstance(m, Message)) if isinstance(inner, list)
                else payload_bytes(part))
    ctype = part.get_content_type()
    name = _filename(part)
    if not name:
        inner = part.get_payload()
        subject = ""
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            subjects = header_values(inner[0], "Subject")
            subject = decode_value(subjects[0]) if subjects else ""
        stem = _safe_stem(" ".join(subject.split()), 120)
        default = "message.eml" if ctype in _MESSAGE_TYPES else _default_name(ctype)
        name = f"{stem}.eml" if stem and ctype in _MESSAGE_TYPES else _described(part, default)
    parts.attachments.append(Attachment(name, ctype, data, None))


def _body_of(raw: bytes) -> bytes:
    """The bytes after a part's header block."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if raw.startswith((b"\r\n", b"\n")):
        return raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    return raw[match.end():] if match else b""


def _raw_children(raw: bytes | None, boundary: str | None, count: int) -> list[bytes | None]:
    """The raw bytes of each child of a multipart, or Nones when they cannot be told apart."""
    if raw is None or not boundary:
        return [None] * count
    body = _body_of(raw)
    delimiter = b"--" + boundary.encode("ascii", "surrogateescape")
    pieces: list[bytes] = []
    current: int | None = None
    position = 0
    for line_end in _line_starts(body):
        line = body[position:line_end]
        if line.startswith(delimiter) and line[len(delimiter):].strip(b" \t\r\n") in (b"", b"--"):
            if current is not None:
                pieces.append(_strip_last_newline(body[current:position]))
            if line[len(delimiter):].strip(b" \t\r\n") == b"--":
                current = None
                break
            current = line_end
        position = line_end
    if current is not None:
        pieces.append(body[current:])
    return list(pieces) if len(pieces) == count else [None] * count


def _line_starts(body: bytes) -> list[int]:
    ends = [m.end() for m in _BOUNDARY_LINE.finditer(body)]
    return ends + ([len(body)] if not ends or ends[-1] != len(body) else [])


def _strip_last_newline(data: bytes) -> bytes:
    # The line break before a boundary belongs to the boundary (RFC 2046 §5.1.1).
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data
