"""`postdesk doctor`: checks an installation the way the daemon will use it, and says how to fix it.

Each check is a small function returning one or more `Finding`s: the settings load, the
database answers and carries the schema this code expects, the relay answers EHLO, the TLS
certificate and key load as a pair, the rules load (every `file:line` problem on its own
line), and every mail template compiles and renders with a sample context. Nothing is
changed: no schema upgrade, no file created, no mail sent. The checks live by concern in
`schema` (database), `relay` (relay and TLS files), `staff` (rules, directory, agents' proof)
and `templates`; each imports what it checks with when it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from gateway.config import DEFAULT_CONFIG, Config, ConfigError, load_config
from gateway.doctor.finding import Finding
from gateway.doctor.relay import check_relay, check_tls
from gateway.doctor.schema import check_database
from gateway.doctor.staff import check_agent_tokens, check_rules
from gateway.doctor.templates import EVENT_CONTEXT, SAMPLE_CONTEXT, check_templates

__all__ = ["EVENT_CONTEXT", "SAMPLE_CONTEXT", "Finding", "diagnose", "run"]


def check_config(path: Path | None) -> tuple[Config | None, Finding]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, Finding("config", False, str(exc), "correct that key in the settings file or the POSTDESK_* "
                             "variable named; every key is described in config/postdesk.yaml")
    source = path or Path(os.environ.get("POSTDESK_CONFIG", DEFAULT_CONFIG))
    loaded = f"{source} loaded" if source.exists() else f"no {source}: built-in defaults"
    return config, Finding("config", True, f"{loaded}; mailboxes {', '.join(config.mailboxes)}")


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
