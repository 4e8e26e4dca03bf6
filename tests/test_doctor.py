"""`postdesk doctor`: one line per check, a fix for each failure, exit 1 when anything failed.

Each test runs the real command against real parts: a migrated SQLite database, the SMTP sink as
the relay, certificates made by openssl, and copies of the shipped rules and templates with a
fault put in where the test wants one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.db.engine import make_engine, upgrade
from tests.harness import REPO, Sink, free_port


def doctor(env: dict[str, str]) -> tuple[int, list[str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}
    done = subprocess.run([sys.executable, "-m", "gateway", "doctor"], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout.splitlines()


def line(lines: list[str], check: str, needle: str = "") -> str:
    found = [entry for entry in lines if entry.split()[1:2] == [check] and needle in entry]
    assert found, f"no {check} line with {needle!r} in:\n" + "\n".join(lines)
    return found[0]


def make_cert(folder: Path, name: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
                    "-out", str(cert), "-subj", f"/CN={name}.example"], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def relay() -> Sink:
    sink = Sink().start()
    yield sink  # type: ignore[misc]
    sink.stop()


@pytest.fixture
def healthy(tmp_path: Path, relay: Sink) -> dict[str, str]:
    """Settings under which every check passes."""
    url = f"sqlite:///{tmp_path / 'postdesk.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    cert, key = make_cert(tmp_path, "intake")
    return {
        "POSTDESK_DATABASE__URL": url,
        "POSTDESK_RELAY__HOST": "127.0.0.1",
        "POSTDESK_RELAY__PORT": str(relay.port),
        "POSTDESK_SMTP__TLS_CERT": str(cert),
        "POSTDESK_SMTP__TLS_KEY": str(key),
        "POSTDESK_STORE_DIR": str(tmp_path / "store"),
    }


def test_a_healthy_installation_passes_every_check(healthy: dict[str, str]) -> None:
    code, lines = doctor(healthy)
    assert code == 0, "\n".join(lines)
    for check in ("config", "database", "relay", "tls", "rules", "templates"):
        assert line(lines, check).startswith("OK"), lines
    assert "schema at revision" in line(lines, "database")
    assert "EHLO 250" in line(lines, "relay")
    assert lines[-1] == "all checks passed"


def test_each_failure_is_named_with_a_fix(healthy: dict[str, str], tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    # Line 3 of this file has an unknown key: the loader names file and line.
    (rules / "99-broken.yaml").write_text("- name: broken\n  match: {to: support@telenta.example}\n  sett: {}\n")
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    # A site's own Swedish and Romanian files (beside the translated English source) are checked too.
    for lang in ("sv", "ro"):
        (templates / "mail" / lang).mkdir(exist_ok=True)
    (templates / "mail" / "sv" / "closed.txt.j2").write_text("Subject: x\n\nHej {{ number\n")
    (templates / "mail" / "ro" / "resolved.txt.j2").write_text("Subject: x\n\n{{ no_such_variable }}\n")
    (templates / "mail" / "en" / "confirmation.txt.j2").unlink()
    cert, _ = make_cert(tmp_path, "one")
    _, other_key = make_cert(tmp_path, "two")
    empty = tmp_path / "empty.db"
    make_engine(f"sqlite:///{empty}").connect().close()
    code, lines = doctor({
        **healthy,
        "POSTDESK_DATABASE__URL": f"sqlite:///{empty}",
        "POSTDESK_RELAY__PORT": str(free_port()),
        "POSTDESK_SMTP__TLS_CERT": str(cert),
        "POSTDESK_SMTP__TLS_KEY": str(other_key),
        "POSTDESK_RULES__DIR": str(rules),
        "POSTDESK_TEMPLATES_DIR": str(templates),
    })
    print("\n".join(lines))
    assert code == 1
    assert "no schema" in line(lines, "database") and "postdesk migrate" in line(lines, "database")
    assert "refused the connection" in line(lines, "relay") and "fix:" in line(lines, "relay")
    assert "do not load as a pair" in line(lines, "tls")
    assert "fix: the key does not belong to the certificate" in line(lines, "tls")
    broken_rule = line(lines, "rules", "99-broken.yaml")
    assert broken_rule.startswith("FAIL") and "99-broken.yaml:3" in broken_rule, broken_rule
    assert "closed.txt.j2:3" in line(lines, "templates", "sv/closed")
    assert "no_such_variable" in line(lines, "templates", "ro/resolved")
    assert "missing confirmation" in line(lines, "templates", "mail/en")
    assert all(entry.startswith("OK") or "-- fix: " in entry for entry in lines[:-1])
    assert lines[-1].endswith("problem(s) found")


def test_missing_database_file_and_unreadable_tls(healthy: dict[str, str], tmp_path: Path) -> None:
    code, lines = doctor({**healthy, "POSTDESK_DATABASE__URL": f"sqlite:///{tmp_path / 'none' / 'x.db'}",
                          "POSTDESK_SMTP__TLS_CERT": str(tmp_path / "absent.crt")})
    assert code == 1
    assert "does not exist yet" in line(lines, "database")
    # A doctor looks and changes nothing: the folder was not created.
    assert not (tmp_path / "none").exists()
    assert "absent.crt does not exist" in line(lines, "tls")


def test_a_bad_setting_is_the_one_line_that_matters(healthy: dict[str, str]) -> None:
    code, lines = doctor({**healthy, "POSTDESK_RELAY__PORT": "twenty-five"})
    assert code == 1
    assert line(lines, "config").startswith("FAIL")
    assert "POSTDESK_RELAY__PORT" in line(lines, "config")
    assert len(lines) == 2


def test_a_department_nobody_hears_from_fails_and_untrusted_mta_warns(healthy: dict[str, str], tmp_path: Path) -> None:
    shipped = (REPO / "config" / "directory.yaml").read_text(encoding="utf-8")
    directory = tmp_path / "directory.yaml"
    # A team with a title and nothing else: its tickets would reach nobody.
    directory.write_text(shipped.replace("departments:\n", "departments:\n  tomt-team:\n    title: Tomt\n", 1),
                         encoding="utf-8")
    code, lines = doctor({**healthy, "POSTDESK_RULES__DIRECTORY": str(directory),
                          "POSTDESK_AGENT_MAIL__TRUSTED_AUTHSERV_ID": "mx.telenta.example"})
    assert code == 1
    empty = line(lines, "staff", "tomt-team")
    assert empty.startswith("FAIL") and "nobody would hear" in empty and "-- fix:" in empty
    warned = line(lines, "staff", "trusted_authserv_id")
    assert warned.startswith("WARN") and "mta_hosts" in warned
    # With MTA hosts the warning goes; the shipped directory reaches a named person everywhere.
    code, lines = doctor({**healthy, "POSTDESK_AGENT_MAIL__TRUSTED_AUTHSERV_ID": "mx.telenta.example",
                          "POSTDESK_AGENT_MAIL__MTA_HOSTS": "127.0.0.1,10.0.4.0/24"})
    assert code == 0, "\n".join(lines)
    assert not [entry for entry in lines if entry.startswith(("WARN", "FAIL"))]
    assert "unrouted mail to kundtjanst" in line(lines, "staff")


def test_no_triage_department_fails(healthy: dict[str, str], tmp_path: Path) -> None:
    shipped = (REPO / "config" / "directory.yaml").read_text(encoding="utf-8")
    directory = tmp_path / "directory.yaml"
    directory.write_text(shipped.replace("support_manager: supportansvarig@telenta.example",
                                         "support_manager: someone.else@telenta.example"), encoding="utf-8")
    code, lines = doctor({**healthy, "POSTDESK_RULES__DIRECTORY": str(directory)})
    assert code == 1
    assert "routes goes to no department" in line(lines, "staff", "no department")
    code, lines = doctor({**healthy, "POSTDESK_RULES__DIRECTORY": str(directory),
                          "POSTDESK_RULES__TRIAGE_DEPARTMENT": "sales"})
    assert code == 0, "\n".join(lines)


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    from gateway.db.engine import alembic_head_revision, head_revision

    assert head_revision() == alembic_head_revision()


def test_a_database_at_an_older_revision_says_migrate(healthy: dict[str, str], tmp_path: Path) -> None:
    older = tmp_path / "older.db"
    upgrade(make_engine(f"sqlite:///{older}"), "0011")
    code, lines = doctor({**healthy, "POSTDESK_DATABASE__URL": f"sqlite:///{older}"})
    assert code == 1
    found = line(lines, "database")
    assert found.startswith("FAIL") and "schema at revision 0011, this version expects" in found, found
    assert "postdesk migrate" in found
