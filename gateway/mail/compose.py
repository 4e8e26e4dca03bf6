"""Outgoing MIME: headers that thread in the customer's client and keep auto-responders quiet.

Built with the stdlib's compat32 classes: the modern policy parses every header it is given back
into a tree, which made composing five times slower on the hot path for no gain here. The parts
`Outgoing.build()` returns write themselves (`as_bytes()`) with `_Writer`: the stdlib's generator,
but plain header lines are written as they are and the rest folded by compat32 once per distinct
value, instead of every header through the folder; the bytes are the stdlib's to the last one.

Every header stays within RFC 5322's limits: compat32 folds at whitespace, so what could still
make a line over 998 characters is a long run without any, which only customers' values bring
(a subject, a Message-ID). Subjects are shortened, over-long Message-IDs left out of
In-Reply-To and References, and control characters (header injection) never written.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from email import encoders, quoprimime
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.policy import Compat32, Policy, compat32
from email.utils import format_datetime, formataddr
from io import BytesIO

from gateway.clock import utcnow

# Set on everything we send, so that our own mail coming back is recognised as a loop.
LOOP_HEADER = "X-Postdesk-Loop"


# A header line the stdlib's compat32 folding leaves exactly as it is: printable ASCII words
# with single spaces between them, the whole line ("Name: value") at most 78 characters.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
_PLAIN_LINE = 78


@functools.lru_cache(maxsize=512)
def _folded(name: str, value: str) -> bytes:
    """compat32's folding of an ASCII header, which depends on nothing else: the same From, Subject
    and References go on every mail of a ticket (its confirmation, the staff notices)."""
    return compat32.fold_binary(name, value)


class _Writer(BytesGenerator):
    """The stdlib's generator, writing plain header lines itself instead of folding each.

    Profiling showed most of composing spent folding headers that need none; the ones that
    do (long, encoded-words, anything unusual) still go through the policy's own folding, so
    the bytes are those `Message.as_bytes()` writes (tests/test_compose_bytes.py proves it).
    """

    def _write_headers(self, msg: Message) -> None:
        policy = self.policy
        if type(policy) is not Compat32 or policy.linesep != "\n" or policy.max_line_length != _PLAIN_LINE:
            super()._write_headers(msg)  # type: ignore[misc]
            return
        lines = []
        for name, value in msg.raw_items():
            if (isinstance(value, str) and len(name) + 2 + len(value) <= _PLAIN_LINE and name.isascii()
                    and _PLAIN.fullmatch(value)):
                lines.append(f"{name}: {value}\n".encode("ascii"))
            elif isinstance(value, str) and value.isascii() and name.isascii():
                lines.append(_folded(name, value))
            else:
                lines.append(policy.fold_binary(name, value))
        lines.append(b"\n")
        self._fp.write(b"".join(lines))  # type: ignore[attr-defined]

    @classmethod
    def _make_boundary(cls, text: bytes | None = None) -> str:
        """The stdlib's boundary; its regex is compiled only when the text holds the boundary at all."""
        boundary: str = super()._make_boundary(None)  # type: ignore[misc]
        if text is None or b"--" + boundary.encode("ascii") not in text:
            return boundary
        # What the stdlib does then: a counter after the boundary until no line of the text is it.
        candidate, counter = boundary, 0
        while cls._compile_re("^--" + re.escape(candidate) + "(--)?$", re.MULTILINE).search(text):  # type: ignore[attr-defined]
            candidate, counter = f"{boundary}.{counter}", counter + 1
        return candidate


class _Sent(Message):
    """A part whose `as_bytes()` writes with `_Writer`: the same bytes, cheaper."""

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        if policy is not None and policy is not compat32:
            return super().as_bytes(unixfrom, policy)
        out = BytesIO()
        _Writer(out, mangle_from_=False, policy=compat32).flatten(self, unixfrom=unixfrom)
        return out.getvalue()


class _SentPart(_Sent):
    pass


class _SentMultipart(_Sent, MIMEMultipart):
    pass


def _text_part(text: str, subtype: str) -> Message:
    """A UTF-8 text part in quoted-printable (mostly-ASCII Swedish and Romanian text stays
    readable in the raw message): what `MIMEText(text, subtype, utf-8 in QP)` makes.

    MIMEText gets there through the stdlib's parameter handling (the charset set twice, the
    Content-Type parsed and written again), a third of composing a mail; the part here has the
    same headers in the same order and the same encoded body (tests/test_compose_bytes.py).
    """
    part = _SentPart()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["MIME-Version"] = "1.0"
    part["Content-Transfer-Encoding"] = "quoted-printable"
    # As Charset.body_encode does for QP: the UTF-8 bytes as latin-1 code points, one per byte.
    part.set_payload(quoprimime.body_encode(text.encode("utf-8").decode("latin1")) if text else "")
    return part


# A subject longer than this is cut (at a word) and marked with an ellipsis.
MAX_SUBJECT = 200
# The longest unbroken run a header may carry: folding cannot split it.
MAX_RUN = 900
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_LONG_RUN = re.compile(rf"\S{{{MAX_RUN + 1},}}")


def _header(value: str) -> str:
    """RFC 2047-encode a header value only when it is not plain ASCII; never a control character."""
    value = _LONG_RUN.sub(lambda m: m.group()[:MAX_RUN], " ".join(_CONTROL.sub(" ", value).split()))
    return value if value.isascii() else Header(value, "utf-8").encode()


def shorten_subject(subject: str) -> str:
    """At most MAX_SUBJECT characters, cut at a word where there is one."""
    subject = " ".join(_CONTROL.sub(" ", subject).split())
    if len(subject) <= MAX_SUBJECT:
        return subject
    cut = subject[: MAX_SUBJECT - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > MAX_SUBJECT // 2 else cut).rstrip() + "…"


def _message_id_fits(value: str) -> bool:
    return bool(value) and len(value) <= MAX_RUN and not _CONTROL.search(value) and " " not in value


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
        msg: Message = _text_part(self.text, "plain")
        if self.html:
            alternative = _SentMultipart("alternative")
            alternative.attach(msg)
            alternative.attach(_text_part(self.html, "html"))
            msg = alternative
        if self.attachments:
            msg = _with_files(msg, self.attachments)
        self.message_id = self.message_id or new_message_id(self.domain)
        msg["From"] = formataddr((shorten_subject(self.from_name), self.from_addr), charset="utf-8")
        msg["To"] = _header(self.to)
        msg["Subject"] = _header(shorten_subject(self.subject))
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = self.message_id
        # Ids that cannot be written within a line are left out: threading falls back to the tag.
        in_reply_to = self.in_reply_to if self.in_reply_to and _message_id_fits(self.in_reply_to) else None
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
        refs = [ref for ref in self.references if _message_id_fits(ref)] + ([in_reply_to] if in_reply_to else [])
        if refs:
            # Keep the newest references; some servers refuse very long header lines.
            msg["References"] = " ".join(dict.fromkeys(refs[-20:]))
        if self.reply_to:
            msg["Reply-To"] = _header(self.reply_to)
        if self.automatic:
            # RFC 3834 plus the Exchange header: other robots must not answer us.
            msg["Auto-Submitted"] = self.auto_submitted
            msg["X-Auto-Response-Suppress"] = "All"
        msg[LOOP_HEADER] = self.loop_token or self.domain
        for name, value in self.extra_headers.items():
            msg[name] = _header(value)
        return msg


def _with_files(body: Message, files: list[tuple[str, str, bytes]]) -> Message:
    mixed = _SentMultipart("mixed")
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
