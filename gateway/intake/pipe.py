"""Mail handed over by an MTA pipe (`postdesk inject`): whom it is for when the MTA does not say.

A pipe has no SMTP envelope. When the MTA passes no recipient, the message's own headers are
the best record of it: `Delivered-To` and `X-Original-To` (added by the MTA that delivered it),
then `To` and `Cc` (what the sender wrote). Each of our mailboxes they name is a recipient, in
that order, so one mail to support@ and service@ is filed under both.
"""

from __future__ import annotations

from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


def recipients_in(raw: bytes, ours: Callable[[str], bool]) -> list[str]:
    """Our mailboxes (as `ours` accepts them) named in the recipient headers, without repeats."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    found: list[str] = []
    for name in RECIPIENT_HEADERS:
        values = [str(v) for v in headers.get_all(name, [])]
        for _display, address in getaddresses(values):
            address = address.strip().lower()
            if address and ours(address) and address not in found:
                found.append(address)
    return found
