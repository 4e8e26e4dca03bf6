"""Signed reply addresses: `support+t104233.a2kf1.3f9a1c2b7d4e@telenta.example`.

The tag after `+` names the ticket (`t104233`), the purpose (`a`: an agent's reply, `p`: a third
party's answer), the day it was issued (days since 1970 in base 36) and an HMAC-SHA256 over all
of that *and the address it was sent to*. The address itself is not in the token: a reply proves
itself only when it comes from the address the token was made for, so a token copied into
someone else's mail, moved to another ticket, or past `agent_mail.token_days` proves nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Literal

Purpose = Literal["agent", "third_party"]
_LETTERS: dict[Purpose, str] = {"agent": "a", "third_party": "p"}
_PURPOSES: dict[str, Purpose] = {letter: purpose for purpose, letter in _LETTERS.items()}
_TAG = re.compile(r"t(\d{1,12})\.([a-z])([0-9a-z]{1,6})\.([0-9a-f]{12})")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# Separates these MACs from every other use of the same secret (links, loop header).
_DOMAIN_SEPARATOR = b"postdesk-reply-token\n"


@dataclass(frozen=True)
class ReplyToken:
    """A token whose signature matched the sender: the ticket it is for and why it was sent."""

    number: int
    purpose: Purpose
    day: int


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of reading a reply address: a valid token, or why there is none."""

    token: ReplyToken | None
    found: bool  # a tag that looks like a token was there (valid or not)
    problem: str = ""


def today() -> int:
    return int(time.time() // 86400)


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _DIGITS[rest] + digits
        if not number:
            return digits


def _mac(key: bytes, number: int, address: str, purpose: Purpose, day: int) -> str:
    message = f"{number}\n{address.strip().lower()}\n{purpose}\n{day}".encode()
    return hmac.new(key, _DOMAIN_SEPARATOR + message, hashlib.sha256).hexdigest()[:12]


def reply_address(key: bytes, mailbox: str, number: int, address: str, purpose: Purpose,
                  day: int | None = None) -> str:
    """Our `mailbox` with a tag that proves a reply from `address` answers ticket `number`."""
    day = today() if day is None else day
    local, _, domain = mailbox.lower().partition("@")
    tag = f"t{number}.{_LETTERS[purpose]}{_base36(day)}.{_mac(key, number, address, purpose, day)}"
    return f"{local.split('+', 1)[0]}+{tag}@{domain}"


def check(key: bytes, addresses: list[str], sender: str, *, max_days: int, now: int | None = None) -> TokenCheck:
    """Read the first tagged address among `addresses` (RCPT, To, Cc) for a mail from `sender`."""
    now = today() if now is None else now
    for address in addresses:
        local = address.lower().rpartition("@")[0]
        if "+" not in local:
            continue
        match = _TAG.fullmatch(local.split("+", 1)[1])
        if match is None or match.group(2) not in _PURPOSES:
            return TokenCheck(None, True, f"malformed reply address {address}")
        number, purpose, day = int(match.group(1)), _PURPOSES[match.group(2)], int(match.group(3), 36)
        if not hmac.compare_digest(match.group(4), _mac(key, number, sender, purpose, day)):
            return TokenCheck(None, True, f"the reply address {address} was not issued to {sender} for ticket "
                                          f"{number} (altered, another ticket's or another person's)")
        # A day ahead is allowed for clocks a little apart between daemons.
        if day > now + 1 or now - day > max_days:
            return TokenCheck(None, True, f"the reply address {address} expired ({now - day} days old, "
                                          f"valid for {max_days})")
        return TokenCheck(ReplyToken(number, purpose, day), True)
    return TokenCheck(None, False, "no reply token")
