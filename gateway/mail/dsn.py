"""Bounces: whether a message is a delivery report, and which recipients failed and why.

This module owns reading delivery status notifications: RFC 3464 `multipart/report` DSNs (and
the same fields when an MTA pastes them into plain text), RFC 5965 feedback reports (ARF), and
the plain-text notices of MTAs that send no machine-readable report (qmail, Exim, Sendmail,
older Exchange, Lotus Domino, OpenSMTPD, Yahoo, ...). It looks at the message only; the envelope
sender and the choice between bounce, auto-reply, loop and customer belong to
`gateway.mail.classify`.

Nothing here raises on odd input: headers are read raw and decoded defensively, bodies are
decoded with replacement, MIME trees are walked with a bound, and every pattern is linear (no
nested quantifiers over the same characters), so a hostile message cannot stall the processor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from gateway.mail.charsets import decode
from gateway.mail.headers import decode_value

log = logging.getLogger("gateway.classify")

# A bounce with more parts than this is hostile or broken; the first ones say all we need.
MAX_PARTS = 200
# Only the start of a notice carries the MTA's boilerplate; scanning megabytes buys nothing.
MAX_TEXT = 64_000
# Real bounces list a handful of recipients; thousands would only be an attack on our time.
MAX_RECIPIENTS = 500
_REPORT_PARTS = ("message/delivery-status", "message/global-delivery-status")


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a bounce reports as failed (or delayed)."""

    address: str  # lower-cased addr-spec
    status: str  # RFC 3463 enhanced status ("5.1.1"); inferred from the text if the MTA gave none
    smtp_code: str  # SMTP reply code ("550"), "" if none
    hard: bool  # the address itself is permanently undeliverable (unknown user or domain, null MX)
    diagnostic: str  # short text, may be ""


@dataclass(frozen=True)
class Bounce:
    """What a bounce says: who failed, and which of our messages it was about."""

    recipients: list[FailedRecipient]
    original_message_id: str | None  # in "<...>" form
    report_type: str  # "delivery-status", "feedback-report", or "heuristic"


@dataclass(frozen=True)
class BounceReading:
    """The full answer of `read_bounce`: the bounce (None if not one), why, and the notice text."""

    bounce: Bounce | None
    evidence: list[str] = field(default_factory=list)
    text: str = ""


# -- reading messages defensively ----------------------------------------------------------------

_FOLD = re.compile(r"\r?\n[ \t]+|\r[ \t]+")
_NEWLINES = re.compile(r"\r\n?")


def normalise_line_endings(raw: bytes) -> bytes:
    """CRLF and bare CR to LF.

    The stdlib parser already splits headers on bare CR, but bodies keep it, and line-anchored
    patterns then see one long line; intake may call this before parsing to be sure.
    """
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def header_values(msg: Message, name: str) -> list[str]:
    """All values of a header, unfolded, RFC 2047 decoded where possible; never raises.

    `raw_items` sidesteps the header classes of `policy.default`, which can raise on malformed
    input, and works the same for compat32 messages.
    """
    wanted = name.lower()
    values: list[str] = []
    try:
        items = list(msg.raw_items())
    except Exception:  # A message object built oddly by a caller; treat it as headerless.
        return values
    for key, value in items:
        if str(key).strip().lower() == wanted:
            values.append(decode_value(str(value)).strip())
    return values


def header_text(msg: Message, name: str) -> str:
    """The first value of a header, or "" when absent."""
    values = header_values(msg, name)
    return values[0] if values else ""


def _ctype(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    if isinstance(value, tuple):  # RFC 2231 value: (charset, language, text)
        value = value[2]
    return str(value or "").strip().lower()


def _children(part: Message) -> list[Message]:
    try:
        payload = part.get_payload()
    except Exception:
        return []
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def _walk(msg: Message, *, into_messages: bool) -> Iterator[tuple[Message, Message | None]]:
    """(part, parent) pairs in document order, bounded; optionally not inside attached mails."""
    stack: list[tuple[Message, Message | None]] = [(msg, None)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, parent = stack.pop()
        seen += 1
        yield part, parent
        ctype = _ctype(part)
        if ctype in ("message/rfc822", "message/global") and not into_messages:
            continue
        # message/delivery-status parses into header blocks; they are fields, not parts.
        if ctype in _REPORT_PARTS:
            continue
        stack.extend((child, part) for child in reversed(_children(part)))


def _part_text(part: Message) -> str:
    """Decoded text of a leaf part, line endings folded to LF; "" when it has none."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        try:
            raw = part.get_payload()
        except Exception:
            return ""
        text = raw if isinstance(raw, str) else ""
    else:
        # The same charset table and detection as every other body (gateway.mail.charsets).
        text = decode(payload[: MAX_TEXT * 4], _param(part, "charset") or None)
    return _NEWLINES.sub("\n", text[:MAX_TEXT])


_TAGS = re.compile(r"<[^<>]{0,2000}>")
_BR = re.compile(r"(?i)<(?:br|/p|/div|/tr|/li)\b[^<>]{0,200}>")


def _html_to_text(html: str) -> str:
    return _TAGS.sub("", _BR.sub("\n", html)).replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">")


def notification_text(msg: Message) -> str:
    """The human-readable notice: the first text part outside attached messages and files.

    A multipart part whose boundary the parser could not find arrives as one text payload;
    broken MTAs produce those, so it counts as text too.
    """
    html = ""
    for part, _ in _walk(msg, into_messages=False):
        ctype = _ctype(part)
        if part.is_multipart() or not (ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")):
            continue
        # Attachments (Exim's header dumps, mailheaders.txt) are copies of the original mail.
        if part is not msg and "attachment" in header_text(part, "Content-Disposition").lower():
            continue
        if ctype == "text/html":
            html = html or _html_to_text(_part_text(part))
            continue
        text = _part_text(part)
        if text.strip():
            return text
    return html


# -- evidence: does this message look like a bounce at all? --------------------------------------

_FORWARDED = re.compile(r"(?i)^\s*(?:fwd?|fw|wg|vs|tr|rv|i|doorst)\s*:")
_DAEMON_LOCAL = re.compile(r"(?i)^(?:mailer[-_]?daemon|mail[-_]?daemon|mdaemon)$")
_POSTMASTER_LOCAL = re.compile(r"(?i)^(?:postmaster|post_master)$")
_DAEMON_NAME = re.compile(r"(?i)\bmail(?:er)?[ -]?(?:delivery[ -]?(?:system|subsystem)|daemon)\b")

# Subjects that MTAs use and people do not: enough on their own.
_STRONG_SUBJECT = re.compile(
    r"""(?ix)^\s*(?:
        undelivered\ mail\ returned\ to\ sender
      | mail\ delivery\ failed\b
      | delivery\ status\ notification\ \((?:failure|delay)\)
      | undeliverable\s*:
      | unzustellbar\s*:
      | non\ recapitabile\s*:
      | onbestelbaar\s*:
      | non\ remis\s*:
      | no\ se\ puede\ entregar\s*:
      | failure\ notice\s*$
      | returned\ mail\s*:
      | postmaster\ notify\s*:
      | delivery\ notification\s*:\s*delivery\ has\ failed
      | warning\s*:\ message\ \S+\ delayed\b
      | delayed\ mail\ \(still\ being\ retried\)
      | mail\ failure\ -
      | delivery\ status\ notification\s*:\s*(?:error|delay)
      | message\ you\ sent\ blocked\b
    )""",
)
# Subjects that a customer could also write ("Delivery failure" of a parcel): one hint among two.
_WEAK_SUBJECT = re.compile(
    r"""(?ix)(?:
        \bundeliver(?:able|ed)\b | \bdelivery\ (?:status|failure|report|notification|problem)
      | \bfailed\ delivery\b | \breturned\ mail\b | \bmessage\ delivery\ has\ failed\b
      | \bmail\ (?:system\ )?error\b | \bbounce\ notification\b | \bnot\ delivered\b
      | \bcould\ not\ be\ delivered\b | \berror\ sending\ your\ mail\b | \bmail\ failure\b
      | \bnot\ (?:a\ )?member\b | \bdelivery\ failed\b | \bdelayed\ mail\b
      | メールエラー | 送信エラー | 配信エラー
    )""",
)
# Opening lines of MTA notices (the "facts about formats" of Postfix, Exim, qmail, Sendmail, ...).
_STRONG_BODY = re.compile(
    r"""(?ix)
        hi\.\ this\ is\ the\ qmail-send\ program
      | this\ message\ was\ created\ automatically\ by\ (?:mail\ delivery\ software|the\ smtp\ relay)
      | this\ is\ the\ (?:mail\ system|postfix\ program)\ at\ host
      | i'm\ sorry\ to\ have\ to\ inform\ you\ that\ (?:your|the)\ message
      | delivery\ to\ the\ following\ recipients?\ failed
      | did\ not\ reach\ the\ following\ recipient
      | delivery\ has\ failed\ to\ these\ recipients
      | your\ message\ did\ not\ reach\ some\ or\ all\ of\ the\ intended\ recipients
      | this\ is\ the\ dragonfly\ mail\ agent
      | this\ is\ the\ mailer-daemon,\ please\ do\ not\ reply
      | -{3,}\ ?the\ following\ addresses\ had\ (?:permanent\ |fatal\ |transient\ )*(?:delivery\ )?(?:errors|problems)
      | sorry,\ we\ were\ unable\ to\ deliver\ your\ message\ to\ the\ following\ address
      | unable\ to\ deliver\ (?:the\ )?message\ to\ the\ following\ address
      | could\ not\ be\ delivered\ to\s*:
      | the\ following\ address(?:\(es\)|es)?\ failed
      | a\ message\ that\ you\ sent\ (?:could\ not\ be|has\ not\ yet\ been)\ delivered
      | a\ message\ that\ you\ sent\ contained\ one\ or\ more
      | your\ message\s+(?:subject:[^\n]{0,200}\s+)?was\ not\ delivered\ to
      | we\ had\ trouble\ delivering\ your\ message
      | an\ error\ occurred\ while\ trying\ to\ deliver\ the\ mail
      | there\ was\ an\ error\ delivering\ your\ mail
      | an\ error\ has\ occurred\ while\ attempting\ to\ deliver\ a\ message
      | message\ could\ not\ be\ delivered\ to\ mobile
      | -{3,}\ failure\ reasons\ -{3,}
      | delivery\ failed\ \d+\ attempts
    """,
)
_WEAK_BODY = re.compile(
    r"""(?ix)
        \bcould\ not\ be\ delivered\b | \bundeliverable\b | \bdelivery\ (?:has\ )?failed\b
      | \bpermanent\ (?:error|failure)\b | \bwas\ rejected\b | \bnot\ a\ member\ of\ this\ mailing\ list\b
      | \bunable\ to\ deliver\b | \breturned\ to\ sender\b | \brequested\ action\ not\ taken\b
      | \bno\ such\ user\b | \buser\ unknown\b | \binvalid\ user\ address\b
    """,
)
# A list manager refusing our mail to a members-only list (fml, Mailman, Sympa).
_LIST_MANAGER_HEADERS = ("X-MLServer", "X-ML-Name", "X-ML-Info", "X-Mailman-Version", "X-Sympa-To")
_NOT_MEMBER = re.compile(r"(?i)\bnot (?:a )?member\b")


def _from_address(msg: Message) -> tuple[str, str]:
    """(display name, addr-spec) of From, lower-cased addr; ("", "") when unreadable."""
    value = header_text(msg, "From")
    try:
        pairs = getaddresses([value])
    except Exception:
        return "", ""
    name, addr = pairs[0] if pairs else ("", "")
    return name, addr.strip().lower()


def is_mailer_daemon(address: str) -> bool:
    """Whether an address (or bare local part) is an MTA's own: MAILER-DAEMON and kin."""
    return bool(_DAEMON_LOCAL.match(address.strip().strip("<>").split("@", 1)[0]))


def sender_kind(msg: Message) -> str:
    """"daemon", "postmaster" or "" from the From header (a From of "<>" counts as daemon)."""
    value = header_text(msg, "From").strip()
    name, addr = _from_address(msg)
    local = addr.split("@", 1)[0] if addr else ""
    if value == "<>" or (local and is_mailer_daemon(local)) or _DAEMON_NAME.search(name):
        return "daemon"
    if _POSTMASTER_LOCAL.match(local):
        return "postmaster"
    return ""


def _structural_signs(msg: Message) -> list[str]:
    """Signs no person writes: report parts, NDR headers, a MAILER-DAEMON sender."""
    signs: list[str] = []
    report = _param(msg, "report-type") if _ctype(msg) == "multipart/report" else ""
    if report in ("delivery-status", "global-delivery-status", "feedback-report"):
        signs.append(f"multipart/report {report}")
    inner = (p for p, _ in _walk(msg, into_messages=False) if p is not msg and _ctype(p) in _REPORT_PARTS)
    if not signs and next(inner, None) is not None:
        signs.append("message/delivery-status part")
    if header_values(msg, "X-Failed-Recipients"):
        signs.append("X-Failed-Recipients header")
    if header_text(msg, "X-MS-Exchange-Message-Is-Ndr") or header_values(msg, "X-MS-Embedded-Report"):
        signs.append("Exchange non-delivery report header")
    if sender_kind(msg) == "daemon":
        signs.append("sender is MAILER-DAEMON")
    return signs


def _wording_signs(msg: Message, text: str) -> tuple[list[str], list[str]]:
    """(strong, weak) signs in the subject and the notice text."""
    strong: list[str] = []
    weak: list[str] = []
    kind = sender_kind(msg)
    if kind == "postmaster":
        weak.append("sender is postmaster")
    subject = header_text(msg, "Subject")
    # A customer forwarding a bounce to support asks a question about it; it is not one.
    if _FORWARDED.match(subject) and not kind:
        return strong, weak
    if _STRONG_SUBJECT.search(subject):
        strong.append(f"bounce subject {subject[:60]!r}")
    elif _WEAK_SUBJECT.search(subject):
        weak.append(f"subject {subject[:60]!r}")
    match = _STRONG_BODY.search(text[:3000])
    if match:
        strong.append(f"MTA notice {' '.join(match.group(0).split())[:50]!r}")
    elif _WEAK_BODY.search(text[:3000]):
        weak.append("delivery failure wording")
    if any(header_values(msg, name) for name in _LIST_MANAGER_HEADERS) and _NOT_MEMBER.search(subject + text[:2000]):
        weak.append("mailing-list manager rejection")
    return strong, weak


# -- status codes and what they mean for the address ---------------------------------------------

_ATOM = r"[\w.!#$%&'*+/=?^`{|}~-]"
# An address starts at a token boundary, so a long run of word characters is scanned once.
_ADDR_SPEC = rf"(?<!{_ATOM}){_ATOM}{{1,64}}@[\w-]{{1,63}}(?:\.[\w-]{{1,63}}){{1,10}}"
_ADDR = re.compile(_ADDR_SPEC)
# RFC 3463 class 4 or 5; not part of an IP address or a version number ("4.8.5.36").
_STATUS = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
# A reply code stands alone: not inside a number, an IP address, a path or a phone number.
_SMTP_CODE = re.compile(r"(?<![\w.#/=-])[45][0-5]\d(?=[\s,;:-]|$)")

# Enhanced codes that say the address itself is bad, whatever the wording.
_HARD_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.6", "5.1.10", "5.4.4", "5.7.27"})


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile("(?i)" + "|".join(alternatives))


_FULL = _words(
    r"mailbox (?:is )?full", r"over ?quota", r"quota (?:exceeded|full)", r"disk quota", r"mail ?folder is full",
    r"exceeded the local limit", r"(?:insufficient|not enough) (?:disk |storage )?space", r"mailbox.{0,20}exceed",
    r"メールボックスが一杯",
)
# Wording -> (status to assume when the MTA gave none, hard?). First match wins, so conditions
# that only look like a dead address ("mailbox full" next to a 5.1.1) come first.
_REASONS: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (_FULL, "5.2.2", False),
    (_words(r"size limit exceeded", r"message (?:size )?(?:is )?too (?:big|large)",
            r"exceeds? (?:the )?(?:maximum )?(?:message )?size"), "5.3.4", False),
    (_words(r"account\b[^.\n]{0,40}?\b(?:is|has been) (?:disabled|suspended|inactive|deactivated|expired)",
            r"account (?:disabled|suspended)", r"mailbox (?:is )?(?:disabled|inactive|suspended)"), "5.2.1", False),
    # Postfix's "Host not found, try again" is a DNS timeout, not a missing domain.
    (_words(r"not found, try again", r"temporary (?:dns|lookup) failure"), "4.4.3", False),
    (_words(r"host (?:or domain name )?not found", r"domain (?:name )?not found", r"no mx record",
            r"couldn't find a mail exchanger", r"unrouteable (?:mail )?domain", r"domain does not exist",
            r"dns lookup failure", r"host unknown", r"unknown host", r"nxdomain"), "5.1.2", True),
    (_words(r"user ?unknown", r"unknown (?:user|recipient|local[- ]part|mailbox|address)", r"addressee unknown",
            r"no such (?:user|mailbox|recipient|account|address)", r"no account by that name", r"no mailbox here",
            r"(?:user|mailbox|recipient|address|account) (?:does not|doesn't) exist", r"user not found",
            r"not listed in (?:the )?(?:domino directory|public name|address book)",
            r"recipient name is not recognized", r"invalid (?:recipient|user|mailbox)", r"no valid recipients",
            r"not a valid (?:mailbox|recipient|user)", r"address (?:couldn't|could not|can't|cannot) be found",
            r"address not found", r"(?:does not|doesn't) have an? [\w.-]{1,60} account"), "5.1.1", True),
    (_words(r"null mx", r"does not accept mail"), "5.1.10", True),
    (_words(r"retry timeout exceeded", r"have been failing for a long time", r"too long (?:in|on) the queue",
            r"in the queue too long", r"giving up", r"could not deliver for the last", r"message expired",
            r"delivery failed \d+ attempts", r"cannot send message for \d+ days?", r"delivery time expired"),
     "5.4.7", False),
    (_words(r"connection (?:timed out|refused)", r"timed out", r"no route to host", r"unable to connect",
            r"could not connect", r"establish an smtp connection", r"host not reachable", r"network is unreachable"),
     "4.4.1", False),
    (_words(r"malformed (?:recipient )?address", r"syntax error", r"bad address syntax"), "5.1.3", False),
    (_words(r"spam", r"black ?list", r"block ?list", r"blocked", r"denied", r"policy", r"not (?:a )?member",
            r"rejected", r"not allowed", r"unauthori[sz]ed", r"reputation", r"authentication", r"refused",
            r"permission"), "5.7.1", False),
    # RFC 5321's stock text for 550, used for unknown mailboxes unless it says why otherwise.
    (_words(r"mailbox unavailable"), "5.1.1", True),
)
# The server accepted the address at RCPT and refused the content later: whatever the wording,
# the mailbox exists (Japanese carriers answer "User unknown" to filtered mail this way).
_AFTER_RCPT = _words(r"in reply to end of data command", r"after end of data", r">>> DATA\s*\n<<< [45]",
                     r"smtp command\W+data\b")
_PERMANENT = _words(r"permanent (?:error|failure)", r"failed permanently", r"fatal error", r"undeliverable",
                    r"not delivered", r"could not be delivered", r"delivery has failed")
_TRANSIENT = _words(r"has not yet been delivered", r"will (?:be retried|continue)", r"this is a warning only",
                    r"still being retried", r"delayed")


def _first_status(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def _first_code(text: str) -> str:
    match = _SMTP_CODE.search(text)
    return match.group(0) if match else ""


def _reason(text: str) -> tuple[str, bool] | None:
    for pattern, status, hard in _REASONS:
        if pattern.search(text):
            return status, hard
    return None


def _settle(status: str, code: str, diagnostic: str, context: str = "") -> tuple[str, bool]:
    """The status to report and whether the failure is hard.

    `hard` means "never send to this address again": an unknown mailbox or domain, or a null
    MX. A full mailbox, a policy block or a timeout is soft, because the same address may work
    later or from another sender, and suppressing a customer over it would lose their tickets.
    When the MTA gave no enhanced status, one is inferred: the detail from the wording, the
    class from the SMTP code, else from whether the notice is a delay warning or a returned mail.
    """
    reason = _reason(diagnostic) or (_reason(context) if context else None)
    if not status:
        if code:
            klass = code[0]
        elif _TRANSIENT.search(context + "\n" + diagnostic):
            klass = "4"
        elif reason or _PERMANENT.search(context + "\n" + diagnostic):
            klass = "5"
        else:
            klass = ""
        detail = reason[0][2:] if reason else "0.0"
        status = f"{klass}.{detail}" if klass else ""
    if not status.startswith("5"):
        return status, False
    hard = reason[1] if reason is not None else status in _HARD_STATUSES
    # When the notice and the diagnostic disagree, a sign of a live mailbox wins: suppressing a
    # customer who only had a full mailbox would cut them off their own tickets.
    evidence = diagnostic + "\n" + context
    if hard and (_AFTER_RCPT.search(evidence) or _FULL.search(evidence)):
        hard = False
    return status, hard


def _short(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


# -- RFC 3464 / RFC 5965 fields -------------------------------------------------------------------

_FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]*(.*)$")


def _field_blocks(text: str) -> list[dict[str, str]]:
    """"Name: value" blocks separated by blank lines (DSN fields written as text)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[0] in " \t" and last:
            current[last] += " " + line.strip()
            continue
        match = _FIELD_LINE.match(line)
        if match:
            last = match.group(1).lower()
            current.setdefault(last, match.group(2).strip())
        else:
            last = ""
    if current:
        blocks.append(current)
    return blocks


def _part_fields(part: Message) -> list[dict[str, str]]:
    """Field blocks of a message/delivery-status or message/feedback-report part."""
    children = _children(part)
    if not children:
        return _field_blocks(_part_text(part))
    blocks: list[dict[str, str]] = []
    for child in children:
        block: dict[str, str] = {}
        try:
            items = list(child.raw_items())
        except Exception:
            continue
        for key, value in items:
            block.setdefault(str(key).strip().lower(), _FOLD.sub(" ", str(value)).strip())
        blocks.append(block)
    return blocks


def _typed_address(value: str) -> str:
    """The address of "rfc822; user@example.org" (or of a bare "<user@example.org>")."""
    match = _ADDR.search(value.split(";", 1)[1] if ";" in value else value)
    return match.group(0).lower().strip(".") if match else ""


_DIAG_TYPE = re.compile(r"(?s)^\s*([A-Za-z][\w-]{0,40})\s*;\s*(.*)$")


def _dsn_status(status: str, diagnostic: str, action: str) -> str:
    """Status field, unless the remote server's own code in the diagnostic says more.

    Reporting MTAs often write a generic "5.0.0", or a "4.x.x" on a failure they gave up on,
    while the diagnostic quotes the remote server's specific code ("550 5.7.1 ...").
    """
    specific = _first_status(diagnostic)
    if not specific:
        return status
    if not status or specific[0] == status[0] or (action == "failed" and specific[0] == "5"):
        return specific
    return status


def _dsn_recipient(block: dict[str, str], notes: dict[str, str], only: bool) -> FailedRecipient | None:
    action = block.get("action", "").strip().lower().split(" ")[0]
    # Success reports (delivered, relayed, expanded) list recipients that did not fail.
    if action in ("delivered", "relayed", "expanded") or (not action and block.get("status", "").lstrip()[:1] == "2"):
        return None
    # Original-Recipient is the address as we sent it; Final-Recipient may be an alias target.
    final = _typed_address(block.get("final-recipient", ""))
    address = _typed_address(block.get("original-recipient", "")) or final
    if not address:
        return None
    typed = _DIAG_TYPE.match(block.get("diagnostic-code", ""))
    diag_type, diagnostic = typed.groups() if typed else ("", block.get("diagnostic-code", ""))
    local_program = diag_type.strip().lower() == "x-unix"
    status = _dsn_status(_first_status(block.get("status", "")), diagnostic, action)
    if action == "delayed" and not status:
        status = "4.0.0"
    # A local delivery program (procmail, a script) failed after the MTA accepted the address:
    # a mail system error (RFC 3463 X.3.x), not a statement about the address.
    if local_program and status.endswith(".0.0"):
        status = status[0] + ".3.0"
    # The notice text often says more than the fields ("unknown user" in a Sendmail transcript).
    # A notice about one recipient explains that recipient even when it names them differently.
    note = notes.get(address) or notes.get(final) or (notes[""] if only else "")
    code = _first_code(diagnostic) or _first_code(note)
    status, hard = _settle(status, code, diagnostic, note)
    if local_program:
        hard = False
    return FailedRecipient(address, status, code, hard, _short(diagnostic or note))


def _dsn_from_blocks(blocks: list[dict[str, str]], notes: dict[str, str]) -> list[FailedRecipient]:
    blocks = [b for b in blocks if {"final-recipient", "original-recipient"} & set(b)][:MAX_RECIPIENTS]
    found = (_dsn_recipient(block, notes, len(blocks) == 1) for block in blocks)
    return _unique([r for r in found if r is not None])


def _unique(recipients: list[FailedRecipient]) -> list[FailedRecipient]:
    """The first report of each address (a DSN may repeat one per attempt or per alias)."""
    seen: set[str] = set()
    kept: list[FailedRecipient] = []
    for recipient in recipients:
        if recipient.address not in seen:
            seen.add(recipient.address)
            kept.append(recipient)
    return kept[:MAX_RECIPIENTS]


def _feedback_recipients(blocks: list[dict[str, str]], original: Message | None) -> list[FailedRecipient]:
    fields: dict[str, str] = {}
    for block in blocks:
        for key, value in block.items():
            fields.setdefault(key, value)
    candidates = [fields.get(k, "") for k in ("removal-recipient", "original-rcpt-to")]
    if original is not None:
        candidates.append(header_text(original, "To"))
    kind = fields.get("feedback-type", "abuse").strip().lower() or "abuse"
    for value in candidates:
        address = _typed_address(value)
        if address:
            return [FailedRecipient(address, "", "", False, f"feedback report: {kind}")]
    return []


# -- plain-text notices ------------------------------------------------------------------------------

# Where the notice ends and the copy of our message begins.
_CUT = re.compile(
    r"""(?imx)^[ \t]*(?:[-=*#]{2,}[ \t]*)?(?:
        (?:(?:this|here|included|below|below\ this\ line)\ is\ a\ )?copy\ of\ (?:the|your)\ (?:original\ )?message
      | (?:the\ )?header\ of\ the\ original
      | below\ is\ a\ copy
    )[^\n]{0,60}$
    | ^[ \t]*(?:[-=*#]{2,}[ \t]*)?(?:
        (?:the\ )?original\ (?:message|mail)(?:\ info|\ follows|\ headers?)?
      | message\ headers?\ follow
      | returned\ message | undelivered\ message | bounced\ e-?mail
    )[ \t]*[:.]?[ \t]*[-=*#]*[ \t]*$
    | ^(?:Received|Return-Path|DKIM-Signature|ARC-Seal|X-Google-Smtp-Source)[ \t]*:""",
)
_LINE_ADDRESS = re.compile(rf"(?m)^[ \t]*<?(?P<addr>{_ADDR_SPEC})>?(?=[\s:,;\[(.]|$)")
_PHRASE_ADDRESS = re.compile(
    rf"(?i)\b(?:to|for|recipients?|address(?:es)?|attempts|list)\b[ \t]*:?[ \t]*<?(?P<addr>{_ADDR_SPEC})"
)
# List and bounce plumbing addresses are never the recipient that failed.
_PLUMBING = re.compile(r"(?i)^(?:mailer-daemon|owner-[^@]*|[^@]*-(?:ctl|request|owner|admin|bounces?))@")
_ORIGINAL_TO = re.compile(r"(?im)^To:[ \t]*(.+)$")


def _split_notice(text: str) -> tuple[str, str]:
    match = _CUT.search(text)
    return (text[: match.start()], text[match.start():]) if match else (text, "")


def _line_start(text: str, position: int) -> int:
    return text.rfind("\n", 0, position) + 1


def _notice_addresses(notice: str, exclude: set[str]) -> list[tuple[str, int]]:
    """(address, start of its line) of the failed recipients the notice names, in order.

    Addresses that open a line are what MTAs list ("<user@example.org>: 550 ..."); only when
    there are none, addresses after "to"/"recipient"/... ("rejected recipient <user@...>").
    """
    found: dict[str, int] = {}
    for pattern in (_LINE_ADDRESS, _PHRASE_ADDRESS):
        for match in pattern.finditer(notice):
            address = match.group("addr").lower().rstrip(".")
            if address not in exclude and not _PLUMBING.match(address):
                found.setdefault(address, _line_start(notice, match.start()))
        if found:
            break
    return sorted(found.items(), key=lambda item: item[1])[:MAX_RECIPIENTS]


def _notes(text: str) -> dict[str, str]:
    """Address -> the lines of the notice about it ("" -> the whole notice), for thin DSN fields."""
    notice, _ = _split_notice(text)
    named = _notice_addresses(notice, set())
    notes = {"": notice[:2000]}
    for index, (address, start) in enumerate(named):
        end = named[index + 1][1] if index + 1 < len(named) else len(notice)
        notes[address] = notice[start:end][:2000]
    return notes


def _text_recipients(notice: str, named: list[tuple[str, int]]) -> list[FailedRecipient]:
    """One recipient per named address; its lines are its diagnostic, the text above is context."""
    preamble = notice[: named[0][1]] if named else notice
    recipients: list[FailedRecipient] = []
    for index, (address, start) in enumerate(named):
        end = named[index + 1][1] if index + 1 < len(named) else len(notice)
        block = notice[start:end]
        first, _, rest = block.partition("\n")
        # "<user@example.org>:" alone on its line: the reason is on the lines below.
        diagnostic = _short(rest if len(first.strip()) <= len(address) + 4 else block) or _short(preamble)
        # With a single recipient, a reply quoted above its address is about it too.
        code = _first_code(block) or (_first_code(preamble) if len(named) == 1 else "")
        status, hard = _settle(_first_status(block), code, diagnostic, preamble)
        recipients.append(FailedRecipient(address, status, code, hard, diagnostic))
    return recipients


def _failed_header(msg: Message, notice: str) -> list[tuple[str, int]]:
    """Exim's and Gmail's X-Failed-Recipients, placed at their lines in the notice."""
    values = header_values(msg, "X-Failed-Recipients")
    listed = [m.group(0).lower() for value in values for m in _ADDR.finditer(value)]
    lowered = notice.lower()
    placed = [(a, _line_start(lowered, max(lowered.find(a), 0))) for a in dict.fromkeys(listed)]
    return sorted(placed, key=lambda item: item[1])[:MAX_RECIPIENTS]


def _heuristic(msg: Message, text: str, original: Message | None) -> list[FailedRecipient]:
    """Failed recipients of a notice without report fields: the header, the text, else our To."""
    notice, rest = _split_notice(text)
    _, own = _from_address(msg)
    exclude = {own} if own else set()
    named = _failed_header(msg, notice) or _notice_addresses(notice, exclude)
    if not named:
        # The notice names nobody (Verizon's MMS gateway): the mail we sent names them.
        to = header_text(original, "To") if original is not None else ""
        match = _ORIGINAL_TO.search(rest) if not to else None
        value = to or (match.group(1) if match else "")
        addresses = dict.fromkeys(m.group(0).lower() for m in _ADDR.finditer(value))
        named = [(a, len(notice)) for a in addresses if a not in exclude][:MAX_RECIPIENTS]
    return _text_recipients(notice, named)


# -- the copy of our message, and its Message-ID -----------------------------------------------------

_HEADER_PARTS = ("text/rfc822-headers", "text/rfc822-header", "message/global-headers")
_COPY_PARTS = ("message/rfc822", "message/global", "message/partial", *_HEADER_PARTS)
_MSGID_LINE = re.compile(r"(?im)^[ \t]*Message-ID[ \t]*:[ \t]*(?:\n[ \t]+)?(<?[^\s<>@]{1,200}@[^\s<>]{1,200}>?)")
_BRACKETED = re.compile(r"<([^<>\s]{1,400})>")


def _message_id(value: str) -> str | None:
    match = _BRACKETED.search(value)
    if match:
        return f"<{match.group(1)}>"
    token = next((t for t in value.split() if "@" in t), "")
    return f"<{token.strip('<>')}>" if token else None


def _attached_message(part: Message) -> Message | None:
    """The original mail carried by a message/rfc822 or rfc822-headers part."""
    ctype = _ctype(part)
    if ctype in _HEADER_PARTS:
        try:
            return HeaderParser().parsestr(_part_text(part).lstrip("\n"))
        except Exception:
            return None
    children = _children(part)
    return children[0] if children else None


def _original(msg: Message, anchor: Message | None) -> Message | None:
    """The returned copy of our mail: next to the report part if there is one, else the innermost."""
    candidates: list[tuple[Message, Message | None]] = []
    for part, parent in _walk(msg, into_messages=True):
        if part is not msg and _ctype(part) in _COPY_PARTS:
            candidates.append((part, parent))
    for part, parent in candidates:
        if anchor is not None and parent is anchor:
            return _attached_message(part)
    # A bounce of a bounce (a gateway wrapping the MTA's DSN) nests reports; the last copy is ours.
    for part, _ in reversed(candidates):
        attached = _attached_message(part)
        if attached is not None and _ctype(attached) != "multipart/report":
            return attached
    return None


def _copies(msg: Message, notice_text: str) -> Iterator[str]:
    """Texts that may quote our mail's headers, the likeliest first."""
    yield _split_notice(notice_text)[1]
    for part, _ in _walk(msg, into_messages=True):
        ctype = _ctype(part)
        if ctype in _REPORT_PARTS:
            # A lost boundary can leave the returned headers inside the report part's fields.
            yield "\n".join(f"Message-ID: {b['message-id']}" for b in _part_fields(part) if "message-id" in b)
        elif not part.is_multipart() and (ctype.startswith("text/") or ctype.startswith("multipart/")):
            # A part without MIME headers of its own gets the copied mail's headers as its headers.
            own = header_text(part, "Message-ID") if part is not msg else ""
            text = _part_text(part)
            if own or text != notice_text:
                yield f"Message-ID: {own}\n{text}" if own else text
    yield notice_text


def _original_message_id(original: Message | None, msg: Message, text: str) -> str | None:
    if original is not None:
        found = _message_id(header_text(original, "Message-ID"))
        if found:
            return found
    for copy in _copies(msg, text):
        match = _MSGID_LINE.search(copy)
        if match:
            return _message_id(match.group(1))
    return None


# -- the whole reading -------------------------------------------------------------------------------


def _report_parts(msg: Message) -> tuple[list[tuple[Message, Message | None]], list[Message]]:
    """(delivery-status parts with their parents, feedback-report parts); outside attachments first."""
    status: list[tuple[Message, Message | None]] = []
    feedback: list[Message] = []
    for into in (False, True):
        for part, parent in _walk(msg, into_messages=into):
            ctype = _ctype(part)
            if ctype in _REPORT_PARTS and all(part is not p for p, _ in status):
                status.append((part, parent))
            elif ctype == "message/feedback-report" and all(part is not p for p in feedback):
                feedback.append(part)
    return status, feedback


def _recipients(msg: Message, text: str) -> tuple[list[FailedRecipient], str, Message | None]:
    """(recipients, report type, original message) from the best source the message offers."""
    status_parts, feedback_parts = _report_parts(msg)
    top_report = _param(msg, "report-type") if _ctype(msg) == "multipart/report" else ""
    if feedback_parts and (top_report == "feedback-report" or not status_parts):
        original = _original(msg, None)
        return _feedback_recipients(_part_fields(feedback_parts[0]), original), "feedback-report", original
    anchor = status_parts[0][1] if status_parts else None
    original = _original(msg, anchor)
    notes = _notes(text)
    recipients = _unique([r for part, _ in status_parts for r in _dsn_from_blocks(_part_fields(part), notes)])
    report = "delivery-status" if status_parts or top_report == "delivery-status" else "heuristic"
    if not recipients:
        # Some MTAs paste the DSN fields into the text part instead of a report part.
        recipients = _dsn_from_blocks(_field_blocks(text), notes)
    if not recipients:
        recipients = _heuristic(msg, text, original)
    return recipients, report, original


def read_bounce(msg: Message, *, presumed: bool = False) -> BounceReading:
    """Read a message as a bounce; `presumed` when the envelope already says it is one.

    Never raises: a failure inside is logged and reads as "not a bounce" (or as a bounce without
    details, when presumed), so the classifier still decides on headers.
    """
    try:
        return _read(msg, presumed)
    except Exception:  # A parser bug must not stop the pipeline; classify falls back to headers.
        log.warning("could not read the message as a bounce", exc_info=True)
        empty = Bounce([], None, "heuristic") if presumed else None
        return BounceReading(empty, ["unreadable bounce"] if presumed else [])


def _read(msg: Message, presumed: bool) -> BounceReading:
    text = notification_text(msg)
    recipients, report, original = _recipients(msg, text)
    strong, weak = _wording_signs(msg, text)
    strong = _structural_signs(msg) + strong
    if report == "heuristic" and any(_STATUS.search(r.diagnostic) for r in recipients):
        weak.append("failed recipient with an enhanced status code")
    # Two weak signs together (a postmaster sender and "could not be delivered") make a bounce.
    if not (presumed or strong or len(weak) >= 2):
        return BounceReading(None, weak, text)
    bounce = Bounce(recipients, _original_message_id(original, msg, text), report)
    return BounceReading(bounce, strong + weak, text)


def parse_bounce(msg: Message) -> Bounce | None:
    """The bounce this message is, or None if its content does not make it one."""
    return read_bounce(msg).bounce
