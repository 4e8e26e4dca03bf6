"""Whether a mail is an agent's (or an invited third party's): the From address *and* proof.

Proof is one of: a reply token issued to that address (`gateway.links.reply`); a DKIM
signature that verifies and whose `d=` is the address's domain or a parent of it (relaxed
alignment, as DMARC has it); or the topmost `Authentication-Results` header of our own MTA
(`agent_mail.trusted_authserv_id`) saying dkim or dmarc passed for that domain, read only on
mail that one of our MTA hosts (`agent_mail.mta_hosts`, by the SMTP client's IP address) handed
over: anyone else can write such a header above their mail. The From header
alone is what anyone can write, so a mail that names an agent without proof is `claimed` and
nothing more: the pipeline handles it as a customer's. A token is a bearer secret, so where the
agent's domain authenticates its mail (`gateway.agents.binding`) it counts only together with
that authentication. At most `limits.max_dkim_signatures` distinct signatures are verified: each
costs a hash of the whole body.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from gateway.agents.binding import Binding
from gateway.config import Agent, Config
from gateway.links.reply import ReplyToken, check
from gateway.mail.limits import distinct_first
from gateway.mail.parse import raw_headers

# dkimpy (and dnspython under it) is imported where agents' mail is checked: `postdesk route`
# and the other verbs load this module but rarely verify a signature.
if TYPE_CHECKING:
    import dkim

log = logging.getLogger("gateway.agents")
DnsLookup = Callable[..., bytes | None]
_RESULT = re.compile(r"^\s*(dkim|dmarc)\s*=\s*(\w+)(.*)$", re.I | re.S)
_PROPERTY = re.compile(r"header\.(d|i|from)\s*=\s*\"?([^\s;\"]+)", re.I)
_SIGNER = re.compile(rb"^dkim-signature:(?:[^\r\n]|\r?\n[ \t])*?[;\s]d[ \t]*=[ \t]*([A-Za-z0-9.-]+)", re.I | re.M)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Proof:
    """Who a mail is from, as far as it proves it."""

    agent: Agent | None = None  # the proven agent
    claimed: Agent | None = None  # the agent the From header names, proven or not
    by: str = ""  # "token", "dkim", "authentication-results"; "token+dkim", "token+authentication-results"
    token: ReplyToken | None = None  # a valid token (for an agent or a third party)
    problems: list[str] = field(default_factory=list)

    @property
    def forged(self) -> bool:
        """An agent's address without proof."""
        return self.claimed is not None and self.agent is None

    @property
    def third_party(self) -> bool:
        return self.token is not None and self.token.purpose == "third_party"

    @property
    def why_not(self) -> str:
        return "; ".join(problem for problem in self.problems if problem)

    def summary(self) -> str:
        """For the message's trace: how it was proven, or why an agent's address was not."""
        return self.by or (f"none: {self.why_not}" if self.forged else "")


def aligned(signing_domain: str, address: str) -> bool:
    """`d=telenta.example` vouches for `eva@telenta.example` and `eva@se.telenta.example`."""
    domain = address.rpartition("@")[2].lower().rstrip(".")
    signer = signing_domain.lower().strip().rstrip(".")
    return bool(signer) and (domain == signer or domain.endswith("." + signer))


@cache
def _override(path: Path) -> dict[bytes, bytes]:
    records = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(name).lower().rstrip(".").encode(): str(txt).encode() for name, txt in records.items()}


def dns_lookup(config: Config) -> DnsLookup:
    """dkimpy's TXT lookup, with the records of `agent_mail.dkim_dns_override` first."""
    path = config.agent_mail.dkim_dns_override

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        if path is not None:
            found = _override(Path(path)).get(name.lower().rstrip(b"."))
            if found is not None:
                return found
        import dkim.dnsplug

        return dkim.dnsplug.get_txt(name, timeout=timeout)  # type: ignore[no-any-return]

    return lookup


def _signatures(checker: dkim.DKIM, cap: int) -> list[int]:
    """Indexes of the distinct DKIM signatures to verify, at most `cap`."""
    return distinct_first([value for name, value in checker.headers if name.lower() == b"dkim-signature"], cap)


def dkim_pass(raw: bytes, address: str, lookup: DnsLookup, cap: int = 5) -> tuple[bool, str]:
    """A DKIM signature on `raw` that verifies and is aligned with `address`'s domain."""
    import dkim

    checker = dkim.DKIM(raw)
    indexes = _signatures(checker, cap)
    if not indexes:
        return False, "no DKIM signature"
    problems = []
    for index in indexes:
        try:
            verified = checker.verify(index, dnsfunc=lookup)
        except dkim.DKIMException as exc:
            problems.append(f"DKIM signature {index + 1}: {exc}")
            continue
        signer = (checker.domain or b"").decode("ascii", "replace")
        if not verified:
            problems.append(f"DKIM signature of {signer} does not verify")
        elif not aligned(signer, address):
            problems.append(f"DKIM signature of {signer} is not aligned with {address}")
        else:
            return True, f"DKIM signature of {signer}"
    return False, "; ".join(problems)


def trusted_results(message: Message, address: str, authserv_id: str) -> tuple[bool, str]:
    """Our own MTA's verdict: only the topmost Authentication-Results header, only its id."""
    if not authserv_id:
        return False, "no trusted Authentication-Results configured"
    headers = raw_headers(message, "Authentication-Results")
    if not headers:
        return False, "no Authentication-Results header"
    # The topmost header is the one our MTA added last; a sender can add any below it.
    server, _, results = headers[0].partition(";")
    words = server.split()
    if not words or words[0].lower() != authserv_id.lower():
        return False, f"Authentication-Results from {server.strip() or 'nobody'}, not {authserv_id}"
    for part in results.split(";"):
        match = _RESULT.match(part)
        if match is None or match.group(2).lower() != "pass":
            continue
        for _, value in _PROPERTY.findall(match.group(3)):
            if aligned(value.rpartition("@")[2], address):
                return True, f"{authserv_id}: {match.group(1).lower()}=pass for {value}"
    return False, f"{authserv_id} reports no aligned dkim or dmarc pass"


def from_our_mta(peer: str, hosts: tuple[str, ...]) -> tuple[bool, str]:
    """Whether the SMTP client that handed the mail over (`peer`, an IP address) is our MTA."""
    if not peer:
        return False, "Authentication-Results ignored: the mail did not come from our MTA over SMTP"
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False, f"Authentication-Results ignored: SMTP client {peer!r} is not an IP address"
    if any(address in ipaddress.ip_network(host, strict=False) for host in hosts):
        return True, ""
    return False, f"Authentication-Results ignored: SMTP client {peer} is not one of agent_mail.mta_hosts"


class Prover:
    """Decides `Proof` for one mail; built once per pipeline (the secret and DNS lookup)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.key = config.secret_key()
        self.lookup = dns_lookup(config)
        self.binding = Binding(self.lookup, config.agent_mail.signed_domains)
        self.dkim_cap = config.limits.max_dkim_signatures

    def prove(self, raw: bytes, message: Message, sender: str, addresses: list[str], peer: str = "") -> Proof:
        settings = self.config.agent_mail
        token = check(self.key, addresses, sender, max_days=settings.token_days)
        claimed = self.config.agent(sender) if sender else None
        if token.token is not None:
            if token.token.purpose == "third_party":
                # Proof of the person asked, whoever they are (an agent of another team too).
                return Proof(by="token", token=token.token)
            if claimed is not None:
                return self._bound_token(raw, message, sender, claimed, token.token)
        if claimed is None:
            return Proof()
        problems = [token.problem]
        if settings.dkim:
            ok, why = dkim_pass(raw, sender, self.lookup, self.dkim_cap)
            if ok:
                return Proof(agent=claimed, claimed=claimed, by="dkim")
            problems.append(why)
        ok, why = from_our_mta(peer, settings.mta_hosts)
        if ok:
            ok, why = trusted_results(message, sender, settings.trusted_authserv_id)
        if ok:
            return Proof(agent=claimed, claimed=claimed, by="authentication-results")
        problems.append(why)
        return Proof(claimed=claimed, problems=problems)

    def _bound_token(self, raw: bytes, message: Message, sender: str, agent: Agent, token: ReplyToken) -> Proof:
        """A valid agent token: enough alone only where the agent's domain authenticates nothing."""
        domain = sender.rpartition("@")[2]
        why_bound = self.binding.authenticates(domain)
        signed = any(aligned(d, sender) for d in signing_domains(raw))
        if not why_bound and not signed:
            return Proof(agent=agent, claimed=agent, by="token", token=token)
        ok, why = dkim_pass(raw, sender, self.lookup, self.dkim_cap) if self.config.agent_mail.dkim else (False, "")
        if ok:
            return Proof(agent=agent, claimed=agent, by="token+dkim", token=token)
        ok, results = trusted_results(message, sender, self.config.agent_mail.trusted_authserv_id)
        if ok:
            return Proof(agent=agent, claimed=agent, by="token+authentication-results", token=token)
        because = why_bound or f"the mail carries a DKIM signature of {domain}"
        return Proof(claimed=agent, problems=[f"a reply token counts only with {domain}'s own authentication "
                                              f"({because})", why, results])


def signing_domains(raw: bytes) -> list[str]:
    """The `d=` of every DKIM-Signature header (unverified: only whether one claims a domain)."""
    found = []
    for match in _SIGNER.finditer(raw, 0, _header_end(raw)):
        found.append(match.group(1).decode("ascii", "replace"))
    return found


def _header_end(raw: bytes) -> int:
    end = _HEADER_END.search(raw)
    return end.start() if end else len(raw)
