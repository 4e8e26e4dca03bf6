"""Whether a reply token alone may speak for an agent, or only together with the agent's domain.

A reply token is a bearer secret: whoever holds a copy of the notice that carried it (a
forwarded mail, a leaked mailbox) can write the agent's From and the token proves the rest. So
where the agent's domain authenticates its mail, a token counts only together with that
authentication (an aligned, passing DKIM signature or our MTA's verdict). A domain does that
when it publishes a DMARC record (on itself or its organisational parent), when it is listed in
`agent_mail.signed_domains`, or when the mail itself carries a signature in its name. Domains
that do none of these keep token-only proof; `postdesk doctor` names them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DnsLookup = Callable[..., bytes | None]
# DMARC records change rarely; one lookup per domain per hour is plenty and keeps DNS off the
# path of every agent reply.
_TTL_SECONDS = 3600.0


def _candidates(domain: str) -> list[str]:
    """The domain and its parents down to two labels (`se.telenta.example`, `telenta.example`)."""
    labels = domain.lower().strip().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(max(len(labels) - 1, 1))]


def has_dmarc(domain: str, lookup: DnsLookup) -> bool:
    """A `v=DMARC1` TXT record at `_dmarc.` of the domain or one of its parents."""
    for name in _candidates(domain):
        try:
            record = lookup(f"_dmarc.{name}".encode(), timeout=5)
        except Exception:  # a DNS failure proves nothing either way; the next name may answer
            record = None
        if record and record.strip().lower().startswith(b"v=dmarc1"):
            return True
    return False


class Binding:
    """Decides, per domain, whether a token needs the domain's own authentication too."""

    def __init__(self, lookup: DnsLookup, signed_domains: tuple[str, ...] = ()) -> None:
        self.lookup = lookup
        self.signed = tuple(d.lower().strip().rstrip(".") for d in signed_domains if d.strip())
        self._seen: dict[str, tuple[float, str]] = {}

    def authenticates(self, domain: str) -> str:
        """Why `domain` authenticates its mail ("" when it does not, and a token alone counts)."""
        domain = domain.lower().strip().rstrip(".")
        now = time.monotonic()
        cached = self._seen.get(domain)
        if cached is not None and now - cached[0] < _TTL_SECONDS:
            return cached[1]
        reason = ""
        if any(domain == d or domain.endswith("." + d) for d in self.signed):
            reason = f"{domain} is listed in agent_mail.signed_domains"
        elif has_dmarc(domain, self.lookup):
            reason = f"{domain} publishes DMARC"
        self._seen[domain] = (now, reason)
        return reason

    def token_only(self, domains: list[str]) -> list[str]:
        """Those of `domains` where a reply token alone proves an agent."""
        return sorted({d.lower() for d in domains if not self.authenticates(d)})
