"""Whether an address or a Message-ID may enter the store and reach an SMTP client.

Addresses are checked where they come in (MAIL FROM, RCPT TO with its plus tag, the From header)
and again before the sender hands one to the relay: a control character in an address breaks
the SMTP dialogue for every message after it on the same connection, and a NUL fails a whole
PostgreSQL transaction. Each check returns the reason in words, or None when the value is fine.

Message-IDs are not refused (the mail is the customer's) but made storable
(`gateway.db.normalise.storable_message_id`).
"""

from __future__ import annotations

import re

from gateway.db.normalise import storable_message_id
from gateway.values import QUOTED_LOCAL

__all__ = ["address_problem", "storable_message_id", "storable_text"]

# RFC 5321 4.5.3.1: local part 64 octets, domain 255, the whole path 256 with its brackets.
MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_ADDRESS = 254
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def address_problem(address: str, *, need_domain: bool = True) -> str | None:
    """Why `address` cannot be used as a mailbox, or None when it can."""
    if not address:
        return "empty address"
    local, at, domain = address.rpartition("@")
    # Spaces inside a well-formed quoted local part are the address, not a break in it.
    found = _CONTROL.search(domain if at and QUOTED_LOCAL.fullmatch(local) else address)
    if found:
        what = "a space" if found.group() == " " else f"control character {ord(found.group()):#04x}"
        return f"address contains {what}"
    if len(address.encode("utf-8", "surrogateescape")) > MAX_ADDRESS:
        return f"address longer than {MAX_ADDRESS} octets"
    if not at:
        return None if not need_domain else "address has no domain"
    if not local:
        return "address has an empty local part"
    if len(local.encode("utf-8", "surrogateescape")) > MAX_LOCAL:
        return f"local part longer than {MAX_LOCAL} octets"
    if not domain or len(domain) > MAX_DOMAIN or domain.startswith(".") or ".." in domain:
        return "address has no valid domain"
    return None


def storable_text(value: str, limit: int) -> str:
    """A display value (a name): control characters become spaces, at most `limit` characters."""
    cleaned = " ".join(_CONTROL.sub(" ", value).split())
    return cleaned[:limit]
