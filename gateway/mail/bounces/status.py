"""Status codes and what they mean for the address: RFC 3463 enhanced codes, SMTP reply codes.

This module owns finding codes in text and settling, from the code and the wording, which
status a failure has and whether it is hard (the address itself is dead) or soft. It also
holds the address pattern every reader uses. Every pattern is linear.
"""

from __future__ import annotations

import re

_ATOM = r"[\w.!#$%&'*+/=?^`{|}~-]"
# An address starts at a token boundary, so a long run of word characters is scanned once.
ADDR_SPEC = rf"(?<!{_ATOM}){_ATOM}{{1,64}}@[\w-]{{1,63}}(?:\.[\w-]{{1,63}}){{1,10}}"
ADDR = re.compile(ADDR_SPEC)
# RFC 3463 class 4 or 5; not part of an IP address or a version number ("4.8.5.36").
STATUS = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
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


def first_status(text: str) -> str:
    match = STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def first_code(text: str) -> str:
    match = _SMTP_CODE.search(text)
    return match.group(0) if match else ""


def _reason(text: str) -> tuple[str, bool] | None:
    for pattern, status, hard in _REASONS:
        if pattern.search(text):
            return status, hard
    return None


def settle(status: str, code: str, diagnostic: str, context: str = "") -> tuple[str, bool]:
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


def short(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]

