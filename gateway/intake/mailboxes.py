"""Which RCPT addresses are ours: a small module of its own, so that `postdesk inject` (the MTA
pipe) can ask without loading the SMTP server and its metrics."""

from __future__ import annotations


class Mailboxes:
    """Which RCPT addresses we accept: each mailbox, and its `local+tag@domain` reply addresses.

    `postmaster` (alone and at our domains) is accepted too, as RFC 5321 requires of every MX;
    the processor passes that mail to the admin (`gateway.postmaster`).
    """

    def __init__(self, addresses: tuple[str, ...], postmaster: frozenset[str] = frozenset()) -> None:
        self._exact = frozenset(address.lower() for address in addresses) | postmaster

    def accepts(self, address: str) -> bool:
        address = address.lower()
        if address in self._exact:
            return True
        local, _, domain = address.rpartition("@")
        base = local.split("+", 1)[0]
        return "+" in local and f"{base}@{domain}" in self._exact
