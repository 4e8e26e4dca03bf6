"""Whether a message is a bounce at all: the signs no person writes, and the pre-check.

This module owns the evidence: structural signs (report parts, NDR headers, a MAILER-DAEMON
sender), wording signs (MTA subjects and the opening lines of MTA notices, strong or weak), and
`bounce_hint`, the cheap pre-check on headers and MIME structure that decides whether the
reader runs at all. The pre-check is built from the same signs the reader weighs, so mail it
turns away could never have been read as a bounce without an envelope that says so.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses

from gateway.mail.addresses import simple_pair
from gateway.mail.bounces.mime import REPORT_PARTS, content_type, param, walk
from gateway.mail.headers import HeaderIndex, header_text, header_values

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


def from_address(msg: Message) -> tuple[str, str]:
    """(display name, addr-spec) of From, lower-cased addr; ("", "") when unreadable."""
    return _name_and_address(header_text(msg, "From"))


def _name_and_address(value: str) -> tuple[str, str]:
    simple = simple_pair(value)
    if simple is not None:
        return simple[0], simple[1].lower()
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
    return _sender_kind(header_text(msg, "From"))


def _sender_kind(from_value: str) -> str:
    name, addr = _name_and_address(from_value)
    local = addr.split("@", 1)[0] if addr else ""
    if from_value.strip() == "<>" or (local and is_mailer_daemon(local)) or _DAEMON_NAME.search(name):
        return "daemon"
    if _POSTMASTER_LOCAL.match(local):
        return "postmaster"
    return ""


def structural_signs(msg: Message) -> list[str]:
    """Signs no person writes: report parts, NDR headers, a MAILER-DAEMON sender."""
    signs: list[str] = []
    report = param(msg, "report-type") if content_type(msg) == "multipart/report" else ""
    if report in ("delivery-status", "global-delivery-status", "feedback-report"):
        signs.append(f"multipart/report {report}")
    inner = (p for p, _ in walk(msg, into_messages=False) if p is not msg and content_type(p) in REPORT_PARTS)
    if not signs and next(inner, None) is not None:
        signs.append("message/delivery-status part")
    if header_values(msg, "X-Failed-Recipients"):
        signs.append("X-Failed-Recipients header")
    if header_text(msg, "X-MS-Exchange-Message-Is-Ndr") or header_values(msg, "X-MS-Embedded-Report"):
        signs.append("Exchange non-delivery report header")
    if sender_kind(msg) == "daemon":
        signs.append("sender is MAILER-DAEMON")
    return signs


def wording_signs(msg: Message, text: str) -> tuple[list[str], list[str]]:
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



# -- the pre-check: may this message be a bounce at all? ---------------------------------------------

# Headers only MTAs and list managers write on their notices.
_BOUNCE_HEADERS = frozenset(h.lower() for h in (
    "X-Failed-Recipients", "X-MS-Exchange-Message-Is-Ndr", "X-MS-Embedded-Report", *_LIST_MANAGER_HEADERS))
# Parts that carry a report or a returned copy of a mail's headers; a person's mail has none.
_REPORT_LIKE = frozenset((*REPORT_PARTS, "message/feedback-report", "text/rfc822-headers", "text/rfc822-header",
                          "message/global-headers"))


def bounce_hint(msg: Message, headers: HeaderIndex | None = None) -> str:
    """Why this message may be a bounce, "" when it cannot be one (then the reader never runs).

    Headers and MIME structure only, from the signs the reader itself weighs: without one of
    these, a message could at most show wording signs in its text, and wording alone (a person
    quoting "could not be delivered" or pasting a bounce) is never enough. The envelope sender
    is the caller's to check (`gateway.mail.classify`); `headers`, the caller's index of them.
    """
    headers = headers if headers is not None else HeaderIndex(msg)
    kind = _sender_kind(headers.text("From"))
    if kind:
        return f"sender is {'MAILER-DAEMON' if kind == 'daemon' else kind}"
    present = sorted(headers.names() & _BOUNCE_HEADERS)
    if present:
        return f"{present[0]} header"
    subject = headers.text("Subject")
    if not _FORWARDED.match(subject) and (_STRONG_SUBJECT.search(subject) or _WEAK_SUBJECT.search(subject)):
        return f"subject {subject[:60]!r}"
    return _structure_hint(msg)


def _structure_hint(msg: Message) -> str:
    if content_type(msg) == "multipart/report":
        return "multipart/report"
    if not msg.is_multipart():
        return ""
    for part, _ in walk(msg, into_messages=True):
        ctype = content_type(part)
        if ctype in _REPORT_LIKE:
            return f"{ctype} part"
    return ""
