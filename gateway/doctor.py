"""`postdesk doctor`: checks an installation the way the daemon will use it, and says how to fix it.

Each check is a small function returning one or more `Finding`s: the settings load, the
database answers and carries the schema this code expects, the relay answers EHLO, the TLS
certificate and key load as a pair, the rules load (every `file:line` problem on its own
line), and every mail template compiles and renders with a sample context. Nothing is
changed: no schema upgrade, no file created, no mail sent.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import DEFAULT_CONFIG, Config, ConfigError, load_config

# What a template may use: the union of what gateway.notify and the sign-in mail pass. A
# template naming anything else fails here, as it would (StrictUndefined) when mail is sent.
SAMPLE_CONTEXT: dict[str, Any] = {
    "tag": "[#100042]", "number": 100042, "subject": "Fire alarm keeps ringing", "customer_name": "Anna Berg",
    "link": "https://support.example/t/100042?token=sample", "sender_name": "Postdesk", "missing": ["Site number"],
    "linked_number": 100007, "linked_tag": "[#100007]", "status": "In progress", "text": "A sample text.",
    "unsubscribe_link": "https://support.example/unsubscribe?token=sample",
    "feedback": [(score, f"https://support.example/rate/{score}") for score in range(1, 6)],
    "title": "Sample notice", "minutes": 15,
}
# Variables only some mails get, on top of the sample above: the staff mail about a ticket
# quotes its history; the answer to an agent's mail lists what was done.
EVENT_CONTEXT: dict[str, dict[str, Any]] = {
    "agent_notice": {"history": [{"when": "2026-11-23 09:14", "who": "Anna Berg", "kind": "customer",
                                  "text": "The alarm rang again at nine."}], "reply_by_mail": True},
    "agent_command_result": {"ok": True, "lines": ["#take: assigned to you, in progress"]},
}
# Mail the daemon renders without a per-event switch: the confirmation of a new ticket, the
# notices to staff and agents, the answer to an agent's mail and the question to a third party. The other events are required when the notification matrix mails them.
ALWAYS_RENDERED = ("confirmation", "staff_notice", "agent_notice", "agent_command_result", "third_party_question")


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""
    # Works, but should be changed: printed as WARN, does not fail the run.
    warn: bool = False

    def line(self) -> str:
        level = "FAIL" if not self.ok else "WARN" if self.warn else "OK"
        head = f"{level:<4}  {self.check:<9} {self.detail}"
        return head if (self.ok and not self.warn) or not self.fix else f"{head} -- fix: {self.fix}"


def check_config(path: Path | None) -> tuple[Config | None, Finding]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, Finding("config", False, str(exc), "correct that key in the settings file or the POSTDESK_* "
                             "variable named; every key is described in config/postdesk.yaml")
    source = path or Path(os.environ.get("POSTDESK_CONFIG", DEFAULT_CONFIG))
    loaded = f"{source} loaded" if source.exists() else f"no {source}: built-in defaults"
    return config, Finding("config", True, f"{loaded}; mailboxes {', '.join(config.mailboxes)}")


def check_database(config: Config) -> Iterator[Finding]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from gateway.db.engine import current_revision, head_revision

    url = make_url(config.database.url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        # make_engine would create the file; a doctor only looks.
        database = Path(url.database or "")
        if not database.exists():
            yield Finding("database", False, f"{shown}: {database} does not exist yet",
                          "run `postdesk migrate` (or start `postdesk serve`, which creates it); check that "
                          f"{database.parent} is the intended folder and writable by the daemon's user")
            return
        engine = create_engine(config.database.url, connect_args={"timeout": 5})
    else:
        engine = create_engine(config.database.url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = current_revision(engine)
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        yield Finding("database", False, f"{shown}: cannot connect: {reason}",
                      "start the database server, or correct database.url (POSTDESK_DATABASE__URL): host, port, "
                      "user, password and database name")
        return
    finally:
        engine.dispose()
    yield from _schema_finding(shown, current, head_revision())


def _schema_finding(shown: str, current: str | None, head: str | None) -> Iterator[Finding]:
    from alembic.script import ScriptDirectory

    from gateway.db.engine import MIGRATIONS

    if current == head:
        yield Finding("database", True, f"{shown}: connected; schema at revision {current} (current)")
        return
    if current is None:
        yield Finding("database", False, f"{shown}: connected, but no schema (empty database)",
                      "run `postdesk migrate` (or start `postdesk serve`, which migrates)")
        return
    known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    if current in known:
        yield Finding("database", False, f"{shown}: schema at revision {current}, this version expects {head}",
                      "run `postdesk migrate` (back up first: `postdesk serve` would also migrate at start)")
        return
    yield Finding("database", False, f"{shown}: schema at revision {current}, unknown to this version "
                  f"(expects {head}): a newer Postdesk migrated it",
                  "upgrade this installation to the version the other daemons run")


def check_relay(config: Config, timeout: float = 10.0) -> Finding:
    relay = config.relay
    where = f"{relay.host}:{relay.port}"
    fix_address = "set relay.host and relay.port (POSTDESK_RELAY__HOST, POSTDESK_RELAY__PORT)"
    try:
        client = smtplib.SMTP(relay.host, relay.port, timeout=min(timeout, relay.timeout))
    except ConnectionRefusedError:
        return Finding("relay", False, f"{where} refused the connection: nothing listens there",
                       f"start the relay (e.g. `systemctl start postfix`) or {fix_address}")
    except (TimeoutError, socket.timeout):
        return Finding("relay", False, f"{where} did not answer within {timeout:.0f} s",
                       f"check the host and any firewall between us and it, or {fix_address}")
    except socket.gaierror as exc:
        return Finding("relay", False, f"{relay.host}: name does not resolve ({exc.strerror})", fix_address)
    except (OSError, smtplib.SMTPException) as exc:
        return Finding("relay", False, f"{where}: {type(exc).__name__}: {exc}", fix_address)
    try:
        code, answer = client.ehlo()
        if code != 250:
            return Finding("relay", False, f"{where} answered EHLO with {code} {answer.decode(errors='replace')}",
                           "allow this host to relay (Postfix: mynetworks) or point the relay elsewhere")
        notes = [f"EHLO {code} from {answer.decode(errors='replace').splitlines()[0]}"]
        if relay.starttls:
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
            notes.append("STARTTLS ok")
        if relay.username:
            client.login(relay.username, relay.password or "")
            notes.append(f"login as {relay.username} ok")
        return Finding("relay", True, f"{where}: " + "; ".join(notes))
    except smtplib.SMTPNotSupportedError as exc:
        return Finding("relay", False, f"{where}: {exc}", "set relay.starttls: false, or enable STARTTLS on the relay")
    except smtplib.SMTPAuthenticationError as exc:
        return Finding("relay", False, f"{where}: login refused: {exc.smtp_code} {exc.smtp_error.decode(errors='replace')}",
                       "correct relay.username and relay.password")
    except (ssl.SSLError, ssl.CertificateError) as exc:
        return Finding("relay", False, f"{where}: TLS failed: {exc}",
                       "give the relay a certificate valid for its host name, or connect by the name it carries")
    except (OSError, smtplib.SMTPException) as exc:
        return Finding("relay", False, f"{where}: {type(exc).__name__}: {exc}", fix_address)
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def check_tls(config: Config) -> Finding:
    cert, key = config.smtp.tls_cert, config.smtp.tls_key
    if cert is None or key is None:
        return Finding("tls", True, "smtp.tls_cert/tls_key not set: STARTTLS is not offered on intake")
    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            return Finding("tls", False, f"{what} {path} does not exist",
                           f"set smtp.tls_{'cert' if what == 'certificate' else 'key'} to the PEM file's path")
        try:
            Path(path).open("rb").close()
        except OSError as exc:
            return Finding("tls", False, f"{what} {path} is not readable: {exc.strerror}",
                           f"let the daemon's user read it (e.g. `chgrp postdesk {path} && chmod g+r {path}`)")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        fix = ("the key does not belong to the certificate: use the key it was issued for"
               if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc)
               else "both must be PEM files: the certificate (with its chain) and its unencrypted private key")
        return Finding("tls", False, f"{cert} and {key} do not load as a pair: {exc.reason or exc}", fix)
    return Finding("tls", True, f"{cert} and {key} load as a pair")


def check_rules(config: Config) -> list[Finding]:
    from gateway.routing.directory import DirectoryError
    from gateway.routing.loader import RulesError
    from gateway.routing.runtime import load_routing, problems_of

    try:
        routing = load_routing(config)
    except (RulesError, DirectoryError) as exc:
        fix = "edit that file and line; `postdesk rules check` validates without starting anything"
        return [Finding("rules", False, str(problem), fix) for problem in problems_of(exc)] or [
            Finding("rules", False, str(exc), fix)]
    directory = routing.directory
    return [Finding("rules", True, f"{len(routing.rules.rules)} rule(s) in {config.rules.dir}; directory "
                    f"{config.rules.directory}: {len(directory.departments)} department(s), "
                    f"{len(directory.organisations)} organisation(s)"), *check_staff(config, directory)]


def check_staff(config: Config, directory: Any) -> Iterator[Finding]:
    """Every ticket reaches someone: each department has people, unrouted mail a triage team."""
    from gateway.routing.staff import triage_department, unheard

    where = config.rules.directory
    for name in unheard(config, directory):
        yield Finding("staff", False, f"department {name}: nobody would hear of its tickets (no manager, no members)",
                      f"give it a manager or members in {where}, or remove it")
    triage = triage_department(config, directory)
    if directory.default_department is None and triage is None:
        yield Finding("staff", False, "mail that no rule, organisation or topic routes goes to no department",
                      f"set rules.triage_department, or make support_manager in {where} a department's manager")
    elif triage is not None and triage not in directory.departments:
        yield Finding("staff", False, f"rules.triage_department: no department {triage!r} in {where}",
                      f"name one of: {', '.join(directory.departments)}")
    if config.agents:
        yield Finding("staff", True, f"{len(config.agents)} person(s) under agents: in the settings, merged with the "
                      "directory", f"list them as members or managers of departments in {where} and empty agents:",
                      warn=True)
    if config.agent_mail.trusted_authserv_id and not config.agent_mail.mta_hosts:
        yield Finding("staff", True, "agent_mail.trusted_authserv_id is set without agent_mail.mta_hosts: no "
                      "Authentication-Results header is believed", "set agent_mail.mta_hosts to the IP addresses of "
                      "your MTAs (e.g. [127.0.0.1]), or empty trusted_authserv_id", warn=True)
    staff = config.staff
    detail = (f"{len(staff)} person(s) ({sum(a.role == 'manager' for a in staff)} manager(s), "
              f"{sum(a.role == 'lead' for a in staff)} lead(s)); unrouted mail to {triage or directory.default_department}")
    yield Finding("staff", True, detail)


def required_events(config: Config) -> list[str]:
    """The mail templates the daemon will ask for in the fallback language."""
    mailed = [event for event, rule in config.notifications.items()
              if rule.customer != "never" and event != "created"]  # "created" mails the confirmation
    return list(dict.fromkeys([*ALWAYS_RENDERED, *mailed]))


def check_templates(config: Config) -> list[Finding]:
    from jinja2 import TemplateError, TemplateSyntaxError

    from gateway.templating import FALLBACK_LANGUAGE, MailTemplates

    root = Path(config.templates_dir)
    mail = root / "mail"
    if not mail.is_dir():
        return [Finding("templates", False, f"{mail} is not a folder",
                        "set templates_dir to the folder holding mail/<lang>/<event>.txt.j2")]
    templates = MailTemplates(root)
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    for path in sorted(mail.glob("*/*.txt.j2")):
        lang, event = path.parent.name, path.name.removesuffix(".txt.j2")
        counts[lang] = counts.get(lang, 0) + 1
        try:
            rendered = templates.render(event, lang, **SAMPLE_CONTEXT, **EVENT_CONTEXT.get(event, {}))
        except TemplateSyntaxError as exc:
            findings.append(Finding("templates", False, f"{path}:{exc.lineno}: {exc.message}",
                                    "correct the Jinja2 syntax on that line"))
            continue
        except TemplateError as exc:
            findings.append(Finding("templates", False, f"{path}: {type(exc).__name__}: {exc}",
                                    "use only the variables mail templates get: "
                                    + ", ".join(sorted({*SAMPLE_CONTEXT, *EVENT_CONTEXT.get(event, {})}))))
            continue
        if not rendered.subject:
            findings.append(Finding("templates", False, f"{path}: renders without a subject",
                                    "start the file with a `Subject: …` line, then a blank line, then the body"))
    fallback = mail / FALLBACK_LANGUAGE
    missing = [event for event in required_events(config) if not (fallback / f"{event}.txt.j2").is_file()]
    if missing:
        findings.append(Finding("templates", False, f"{fallback}: missing {', '.join(missing)} (the fallback language "
                                "must have every mail the daemon sends)",
                                f"add {', '.join(f'{e}.txt.j2' for e in missing)} to {fallback}"))
    if not findings:
        per_lang = ", ".join(f"{lang} {count}" for lang, count in sorted(counts.items()))
        findings.append(Finding("templates", True, f"{sum(counts.values())} mail template(s) compile and render "
                                f"({per_lang})"))
    return findings


def check_agent_tokens(config: Config) -> Finding:
    """Name the agents' domains where a leaked reply token alone acts for an agent."""
    from gateway.agents.binding import Binding
    from gateway.agents.proof import dns_lookup

    domains = sorted({agent.address.rpartition("@")[2].lower() for agent in config.agents})
    if not domains:
        return Finding("agents", True, "no agents configured")
    weak = Binding(dns_lookup(config), config.agent_mail.signed_domains).token_only(domains)
    if not weak:
        return Finding("agents", True, f"reply tokens need the domain's DKIM as well for {', '.join(domains)}")
    return Finding("agents", True, f"token-only proof for {', '.join(weak)} (no DMARC record, not in "
                   "agent_mail.signed_domains): a leaked agent notice acts for its agent until it expires; "
                   "publish DMARC or list the domain in agent_mail.signed_domains if it signs its mail")


def diagnose(config_path: Path | None, relay_timeout: float = 10.0) -> Iterator[Finding]:
    """Run every check in order; without settings only the config check can run."""
    config, finding = check_config(config_path)
    yield finding
    if config is None:
        return
    yield from check_database(config)
    yield check_relay(config, relay_timeout)
    yield check_tls(config)
    yield from check_rules(config)
    yield from check_templates(config)
    yield check_agent_tokens(config)


def run(config_path: Path | None, echo: Callable[[str], None], relay_timeout: float = 10.0) -> int:
    """Print one line per finding; return 0 when everything is OK, 1 otherwise."""
    failed = 0
    for finding in diagnose(config_path, relay_timeout):
        echo(finding.line())
        failed += not finding.ok
    echo(f"{failed} problem(s) found" if failed else "all checks passed")
    return 1 if failed else 0
