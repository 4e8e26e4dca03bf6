"""Reply tokens bound to their holder: where the agent's domain authenticates its mail (DMARC,
or listed as signing), a leaked token without that authentication runs no command; with a
passing aligned DKIM signature, or our MTA's Authentication-Results, it does. A domain that
authenticates nothing keeps token-only proof, and `postdesk doctor` names it.

One daemon (SQLite) over real SMTP; DNS comes from the override file, as in test_agents.py.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dkimkeys import Key, make_key, sign
from tests.harness import Daemon, Database, Received, Sink, make_mail, unique_address, wait_until

EVA = "eva@telenta.example"  # telenta.example publishes DMARC
OLLE = "olle@partner.example"  # partner.example publishes nothing and signs nothing
ADMIN = "admin@telenta.example"
MTA = "mx.telenta.example"
CONFIG = """\
    tickets: {{language: en}}
    admin_address: {admin}
    agents:
      - {{name: Eva Lind, address: {eva}, departments: [fire-national], role: agent}}
      - {{name: Olle Partner, address: {olle}, departments: [fire-national], role: agent}}
    agent_mail:
      dkim_dns_override: {dns}
      trusted_authserv_id: {mta}
    scheduler: {{enabled: false}}
    """


@pytest.fixture(scope="module")
def key() -> Key:
    return make_key()


@pytest.fixture(scope="module")
def config_file(key: Key, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("binding")
    dns = folder / "dns.yaml"
    dns.write_text(f'"mail._domainkey.telenta.example": "{key.txt()}"\n'
                   '"_dmarc.telenta.example": "v=DMARC1; p=reject; rua=mailto:dmarc@telenta.example"\n')
    config = folder / "postdesk.yaml"
    config.write_text(textwrap.dedent(CONFIG.format(admin=ADMIN, eva=EVA, olle=OLLE, dns=dns, mta=MTA)))
    return config


@pytest.fixture(scope="module")
def desk(config_file: Path, sink: Sink) -> Iterator[Daemon]:
    db = Database("sqlite", config_file.parent)
    proc = Daemon(db, sink, config_file.parent / "daemon.log", env_extra={"POSTDESK_CONFIG": str(config_file)}).start()
    yield proc
    proc.stop()
    db.drop()


def _open(desk: Daemon, sink: Sink) -> int:
    customer = unique_address("binding")
    desk.send(make_mail(sender=customer, subject="Brandlarm tjuter", body="Hej, larmet tjuter.\n"), sender=customer)
    found = re.search(r"\[#(\d+)\]", str(sink.wait_for(customer)[0].message["Subject"]))
    assert found
    return int(found.group(1))


def _token_of(sink: Sink, agent: str, number: int) -> str:
    """The Reply-To of the agent's notice: the token a leaked copy of it would give away."""
    def notices() -> list[Received]:
        return [m for m in sink.to(agent) if f"[#{number}]" in str(m.message["Subject"])]
    wait_until(notices, what=f"notice to {agent} about {number}")
    return str(notices()[0].message["Reply-To"])


def _reply(desk: Daemon, agent: str, token: str, *, envelope: str, key: Key | None = None,
           headers: dict[str, str] | None = None) -> None:
    raw = make_mail(sender=agent, to=token, subject="Re: ärendet", body="#priority low\n#take\n",
                    message_id=f"<{uuid.uuid4().hex}@laptop.example>", headers=headers)
    if key is not None:
        raw = sign(raw, key, domain=agent.rpartition("@")[2])
    desk.send(raw, sender=envelope, to=[token])
    wait_until(lambda: desk.db.scalar("SELECT count(*) FROM inbound WHERE state = 'queued'") == 0, what="drained")


def _priority(desk: Daemon, number: int) -> str:
    return str(desk.db.scalar("SELECT priority FROM ticket WHERE number = :n", n=number))


def test_leaked_token_from_another_host_runs_nothing_where_the_domain_signs(desk: Daemon, sink: Sink) -> None:
    number = _open(desk, sink)
    token = _token_of(sink, EVA, number)
    before = _priority(desk, number)
    _reply(desk, EVA, token, envelope="mallory@evil.example")
    assert _priority(desk, number) == before != "low", "no command ran"
    assert desk.db.scalar("SELECT assignee FROM ticket WHERE number = :n", n=number) is None
    assert "publishes DMARC" in desk.log()
    wait_until(lambda: any(EVA in m.message.get_content() for m in sink.to(ADMIN)), what="admin told")


def test_token_with_the_agents_dkim_signature_runs_the_commands(desk: Daemon, sink: Sink, key: Key) -> None:
    number = _open(desk, sink)
    _reply(desk, EVA, _token_of(sink, EVA, number), envelope=EVA, key=key)
    assert _priority(desk, number) == "low"
    trace = desk.db.scalar("SELECT m.trace FROM message m JOIN ticket t ON t.id = m.ticket_id "
                           "WHERE t.number = :n AND m.kind = 'agent'", n=number)
    assert '"proof": "token+dkim"' in trace


def test_token_with_our_mtas_verdict_runs_the_commands(desk: Daemon, sink: Sink) -> None:
    number = _open(desk, sink)
    verdict = {"Authentication-Results": f"{MTA}; dkim=pass header.d=telenta.example; dmarc=pass "
                                         "header.from=telenta.example"}
    _reply(desk, EVA, _token_of(sink, EVA, number), envelope=EVA, headers=verdict)
    assert _priority(desk, number) == "low"


def test_domain_that_signs_nothing_keeps_token_only_proof_and_doctor_names_it(desk: Daemon, sink: Sink) -> None:
    number = _open(desk, sink)
    _reply(desk, OLLE, _token_of(sink, OLLE, number), envelope=OLLE)
    assert _priority(desk, number) == "low"
    out = desk.cli("doctor", "--relay-timeout", "2").stdout.decode()
    line = next(line for line in out.splitlines() if "token-only" in line)
    assert "partner.example" in line and "telenta.example" not in line
