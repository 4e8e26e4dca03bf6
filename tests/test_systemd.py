"""The systemd unit: `systemd-analyze verify` accepts it, and the daemon run under the environment it
sets talks the sd_notify protocol (READY=1, WATCHDOG=1, STOPPING=1), reloads on SIGHUP, keeps
its state in the StateDirectory and writes journald-ready log lines.

No systemd is started: the test plays systemd's part with a unix datagram socket of its own as
NOTIFY_SOCKET, and maps the unit's absolute paths (/opt/postdesk, /var/lib/postdesk) to the
work tree and a temporary folder.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import logs, sdnotify
from tests.harness import REPO, Sink, free_port, make_mail

UNIT = REPO / "systemd" / "postdesk.service"
INSTALL_DIR, STATE_DIR = "/opt/postdesk", "/var/lib/postdesk"


def service_entries() -> dict[str, list[str]]:
    """The [Service] section's keys, each with every value it was given (in order)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        entry = raw.strip()
        if not entry or entry.startswith(("#", ";")):
            continue
        if entry.startswith("["):
            section = entry
        elif section == "[Service]":
            key, _, value = entry.partition("=")
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def unit_environment() -> dict[str, str]:
    """Environment= assignments as systemd reads them (several per line, double quotes allowed)."""
    env: dict[str, str] = {}
    for line in service_entries().get("Environment", []):
        for assignment in shlex.split(line):
            key, _, value = assignment.partition("=")
            env[key] = value
    return env


def entry_point() -> list[str]:
    script = Path(sys.executable).with_name("postdesk")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyzer = shutil.which("systemd-analyze")
    if analyzer is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing in CI (.ci/run installs the systemd package)")
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    # The unit names the installed path; verify checks that ExecStart exists and is executable,
    # so the copy points at the command this test environment installed.
    copy = tmp_path / "postdesk.service"
    command = " ".join(entry_point())
    copy.write_text(UNIT.read_text().replace(f"{INSTALL_DIR}/.venv/bin/postdesk", command))
    done = subprocess.run([analyzer, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "postdesk" in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


def test_the_unit_asks_for_what_the_issue_needs() -> None:
    entries = service_entries()
    one = {key: values[-1] for key, values in entries.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"
    assert one["WatchdogSec"] == "30"
    assert one["ExecReload"].endswith("kill -HUP $MAINPID")
    assert one["StateDirectory"] == "postdesk" and one["DynamicUser"] == "yes"
    assert "CAP_NET_BIND_SERVICE" in one["AmbientCapabilities"]
    for key, expected in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes")):
        assert one[key] == expected, key
    env = unit_environment()
    assert env["POSTDESK_DATABASE__URL"].startswith(f"sqlite:///{STATE_DIR}/")


class FakeSystemd:
    """The listening end of NOTIFY_SOCKET: collects what the service sends."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.received: list[str] = []

    def wait_for(self, state: str, timeout: float, count: int = 1) -> list[str]:
        """Collect datagrams until `state` arrived `count` times in all."""
        deadline = time.monotonic() + timeout
        while self.received.count(state) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{state} not {count} time(s) within {timeout} s; got {self.received}")
            self.sock.settimeout(left)
            try:
                datagram = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.received.extend(datagram.splitlines())
        return self.received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # A unix socket path must fit in 108 bytes; pytest's tmp_path may not.
    folder = Path(tempfile.mkdtemp(prefix="pd-sd-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_daemon_under_the_units_environment(short_tmp: Path) -> None:
    state = short_tmp / "state"
    state.mkdir()  # systemd creates StateDirectory before ExecStart
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTDESK_", "NOTIFY_", "WATCHDOG_"))}
    for key, value in unit_environment().items():
        env[key] = value.replace(STATE_DIR, str(state)).replace(INSTALL_DIR, str(REPO))
    sink = Sink().start()
    smtp_port = free_port()
    fake = FakeSystemd(short_tmp)
    log_path = short_tmp / "journal.log"
    log_file = log_path.open("wb")
    info = os.fstat(log_file.fileno())
    env.update({
        # What systemd adds for this unit. WatchdogSec=30 would mean a ping every 15 s; the
        # test asks for 1 s to see several pings quickly (the unit's value is checked above).
        "NOTIFY_SOCKET": str(fake.path),
        "WATCHDOG_USEC": "1000000",
        "STATE_DIRECTORY": str(state),
        "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}",
        # Not set by the unit (config/postdesk.yaml decides them); free ports keep the test
        # from meeting another daemon on this machine.
        "POSTDESK_SMTP__LISTEN": f"127.0.0.1:{smtp_port}",
        "POSTDESK_WEB__LISTEN": f"127.0.0.1:{free_port()}",
        "POSTDESK_METRICS__LISTEN": f"127.0.0.1:{free_port()}",
        "POSTDESK_RELAY__PORT": str(sink.port),
        "POSTDESK_OUTBOX__POLL_INTERVAL": "0.2",
    })
    proc = subprocess.Popen([*entry_point(), "serve"], cwd=REPO, env=env, stdout=log_file, stderr=log_file)
    try:
        fake.wait_for("READY=1", timeout=30)
        # Pings every 0.5 s (half the watchdog time): three within 3 s, the first at once.
        fake.wait_for("WATCHDOG=1", timeout=3, count=3)

        sender = "unit-env@kund.example"
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.sendmail(sender, ["support@telenta.example"], make_mail(sender=sender, subject="Under systemd"))
        sink.wait_for(sender, timeout=30)
        # The unit's Environment= put the database and the generated secret in StateDirectory.
        assert (state / "postdesk.db").exists()
        assert (state / "secret.key").exists()

        proc.send_signal(signal.SIGHUP)  # what ExecReload does
        deadline = time.monotonic() + 10
        while "rules reloaded (SIGHUP)" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "rules reloaded (SIGHUP)" in log_path.read_text()

        proc.send_signal(signal.SIGTERM)
        fake.wait_for("STOPPING=1", timeout=30)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log_file.close()
        fake.close()
        sink.stop()
    lines = log_path.read_text().splitlines()
    assert lines, "the daemon logged nothing"
    # journald stamps lines itself: no timestamp of ours, a syslog priority instead.
    assert all(re.match(r"<[0-7]>", line) for line in lines), lines[:5]
    assert not any(re.match(r"<\d>\d{4}-\d\d-\d\d", line) for line in lines)
    outcome = next(line for line in lines if "gateway.process" in line and "ticket #" in line)
    # One line per message, with the ticket number and the Message-ID.
    assert re.search(r"ticket #\d+ message <[^>]+@customer\.example>", outcome), outcome


def test_watchdog_interval_and_notify_outside_systemd() -> None:
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    # Variables inherited from a parent service are not ours to act on.
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert sdnotify.notify("READY=1", {}) is False


def test_journal_format_keeps_a_traceback_at_its_priority(tmp_path: Path) -> None:
    with (tmp_path / "stream").open("w") as stream:
        info = os.fstat(stream.fileno())
        assert logs.under_journald(stream, {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
        assert not logs.under_journald(stream, {"JOURNAL_STREAM": "1:2"})
        assert not logs.under_journald(stream, {})
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord("gateway.process", logging.ERROR, __file__, 1, "stage %s failed", ("apply",),
                                   sys.exc_info())
    text = logs.JournalFormatter().format(record)
    first, *rest = text.splitlines()
    assert first == "<3>ERROR gateway.process: stage apply failed"
    assert rest and all(line.startswith("<3>  ") for line in rest)
