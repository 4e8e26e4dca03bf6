"""Reply tokens and the proof that a mail is an agent's, without a daemon."""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from gateway.agents.proof import Prover, aligned
from gateway.config import load_config
from gateway.links.reply import check, reply_address, today
from tests.dkimkeys import make_key, publish, sign
from tests.harness import make_mail

KEY = b"k" * 32
EVA = "eva@telenta.example"


def _check(address: str, sender: str = EVA, days: int = 90, now: int | None = None):  # type: ignore[no-untyped-def]
    return check(KEY, ["support@telenta.example", address], sender, max_days=days, now=now)


def test_round_trip_names_ticket_and_purpose() -> None:
    address = reply_address(KEY, "support@telenta.example", 104233, "Eva@Telenta.example", "agent")
    assert address.startswith("support+t104233.a") and address.endswith("@telenta.example")
    result = _check(address.upper())  # some MTAs change the case of the local part
    assert result.token is not None and result.token.number == 104233 and result.token.purpose == "agent"


def test_tampered_signature_is_refused() -> None:
    address = reply_address(KEY, "support@telenta.example", 104233, EVA, "agent")
    local, domain = address.split("@")
    flipped = local[:-1] + ("0" if local[-1] != "0" else "1")
    result = _check(f"{flipped}@{domain}")
    assert result.token is None and result.found and "not issued" in result.problem


def test_token_moved_to_another_ticket_is_refused() -> None:
    address = reply_address(KEY, "support@telenta.example", 104233, EVA, "agent")
    assert _check(address.replace("t104233", "t104234")).token is None


def test_token_of_another_agent_or_purpose_is_refused() -> None:
    karin = reply_address(KEY, "support@telenta.example", 104233, "karin@telenta.example", "agent")
    assert _check(karin).token is None
    assert _check(karin, sender="karin@telenta.example").token is not None
    # A third party's token does not make its holder an agent, nor the other way round.
    third = reply_address(KEY, "support@telenta.example", 104233, EVA, "third_party")
    assert _check(third.replace(".p", ".a", 1)).token is None


def test_token_expires() -> None:
    issued = today() - 91
    address = reply_address(KEY, "support@telenta.example", 104233, EVA, "agent", day=issued)
    result = _check(address)
    assert result.token is None and "expired" in result.problem
    assert _check(address, days=100).token is not None
    future = reply_address(KEY, "support@telenta.example", 104233, EVA, "agent", day=today() + 5)
    assert _check(future).token is None


def test_no_tag_and_malformed_tag() -> None:
    assert not _check("support@telenta.example").found
    bad = _check("support+hello@telenta.example")
    assert bad.found and bad.token is None


def test_alignment_is_relaxed() -> None:
    assert aligned("telenta.example", "eva@se.telenta.example")
    assert aligned("Telenta.Example.", "eva@telenta.example")
    assert not aligned("evil-telenta.example", "eva@telenta.example")
    assert not aligned("kund.example", "eva@telenta.example")


# -- proof by DKIM and by our MTA's Authentication-Results -----------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    good, other = make_key(), make_key()
    override = publish(tmp_path_factory.mktemp("dns") / "dkim.yaml", {"mail._domainkey.telenta.example": good})
    return {"good": good, "other": other, "override": override}


def _prover(override: Path, **extra: str) -> Prover:
    env = {"POSTDESK_SECRET": "s", "POSTDESK_AGENT_MAIL__DKIM_DNS_OVERRIDE": str(override), **extra}
    config_file = override.parent / "postdesk.yaml"
    config_file.write_text("agents:\n  - {name: Eva Lind, address: eva@telenta.example, departments: [fire]}\n")
    return Prover(load_config(config_file, environ=env))


def _prove(prover: Prover, raw: bytes, peer: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    message = email.message_from_bytes(raw)
    return prover.prove(raw, message, EVA, ["support@telenta.example"], peer=peer)


def test_dkim_signature_of_the_agents_domain_proves(keys: dict) -> None:  # type: ignore[type-arg]
    raw = sign(make_mail(sender=EVA, subject="Hej", body="#customer Anna <anna@kund.example>\nRing mig\n"),
               keys["good"], domain="telenta.example")
    proof = _prove(_prover(keys["override"]), raw)
    assert proof.agent is not None and proof.by == "dkim"


def test_failing_or_foreign_dkim_does_not_prove(keys: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    prover = _prover(keys["override"])
    mail = make_mail(sender=EVA, subject="Hej", body="#close\n")
    wrong_key = _prove(prover, sign(mail, keys["other"], domain="telenta.example"))
    assert wrong_key.forged and "does not verify" in " ".join(wrong_key.problems)
    altered = sign(mail, keys["good"], domain="telenta.example").replace(b"#close", b"#take ")
    assert _prove(prover, altered).forged
    publish(tmp_path / "kund.yaml", {"mail._domainkey.kund.example": keys["good"]})  # type: ignore[dict-item]
    foreign = _prove(_prover(tmp_path / "kund.yaml"), sign(mail, keys["good"], domain="kund.example"))
    assert foreign.forged and "not aligned" in " ".join(foreign.problems)
    assert _prove(prover, mail).forged


def test_only_our_mtas_topmost_authentication_results_counts(keys: dict) -> None:  # type: ignore[type-arg]
    prover = _prover(keys["override"], POSTDESK_AGENT_MAIL__TRUSTED_AUTHSERV_ID="mx.telenta.example",
                     POSTDESK_AGENT_MAIL__DKIM="false", POSTDESK_AGENT_MAIL__MTA_HOSTS="127.0.0.1,10.0.4.0/24")
    ours = "mx.telenta.example; dkim=pass header.d=telenta.example header.s=mail; dmarc=pass header.from=telenta.example"
    good = make_mail(sender=EVA, subject="Hej", headers={"Authentication-Results": ours})
    assert _prove(prover, good).by == "authentication-results"
    assert _prove(prover, good, peer="10.0.4.7").by == "authentication-results"
    # The same header handed over by anyone but our MTA (or piped, without a peer) proves nothing.
    for peer in ("203.0.113.9", "127.0.0.2", ""):
        assert _prove(prover, good, peer=peer).forged
    failed = make_mail(sender=EVA, subject="Hej", headers={
        "Authentication-Results": "mx.telenta.example; dkim=fail header.d=telenta.example; dmarc=fail"})
    assert _prove(prover, failed).forged
    # A header a sender wrote sits below the one our MTA adds on top.
    smuggled = make_mail(sender=EVA, subject="Hej", headers={"Authentication-Results": ours})
    smuggled = b"Authentication-Results: mx.telenta.example; dkim=none\r\n" + smuggled
    assert _prove(prover, smuggled).forged
    other_server = make_mail(sender=EVA, subject="Hej", headers={
        "Authentication-Results": ours.replace("mx.telenta.example;", "mx.evil.example;")})
    assert _prove(prover, other_server).forged
