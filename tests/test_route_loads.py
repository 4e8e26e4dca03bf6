"""`postdesk route` loads what the message in hand needs, and no more (issue 13: start-up).

A customer's mail does not load the bounce readers, prometheus-client (route counts nothing) or
the mbox reader; a bounce loads the readers and is still read as one, and an mbox file is still
split into its messages. Each case is a fresh `postdesk route --json` whose exit lists the
modules it had loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _clean_env() -> dict[str, str]:
    """This environment without POSTDESK_* (CI's POSTDESK_TEST_* would read as unknown settings)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("POSTDESK_")}
WATCHED = ("gateway.mail.bounces.reader", "prometheus_client", "mailbox")

_RUN = """
import atexit, json, sys
watched = {watched!r}
atexit.register(lambda: print("LOADED " + json.dumps(sorted(m for m in watched if m in sys.modules))))
sys.argv = ["postdesk", "route", "--json", *sys.argv[1:]]
from gateway.cli import run
run()
"""

CUSTOMER = (b"From: Anna Berg <anna@kund.example>\r\nTo: support@telenta.example\r\n"
            b"Subject: Larmet piper\r\nMessage-ID: <a1@kund.example>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\n"
            b"\r\nHej, larmet piper hela tiden.\r\n")
BOUNCE = (b"From: Mail Delivery System <MAILER-DAEMON@mx.kund.example>\r\nTo: support@telenta.example\r\n"
          b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.kund.example>\r\n"
          b"Date: Tue, 1 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
          b"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
          b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.kund.example\r\n\r\n"
          b"Final-Recipient: rfc822; gone@kund.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
          b"Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
          b"--b--\r\n")


def _route(*paths: Path) -> tuple[list[dict[str, object]], list[str]]:
    code = _RUN.format(watched=WATCHED)
    done = subprocess.run([sys.executable, "-c", code, *map(str, paths)], cwd=REPO, env=_clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("LOADED "), done.stdout
    return [json.loads(line) for line in lines[:-1]], json.loads(lines[-1].removeprefix("LOADED "))


def test_a_customer_mail_loads_no_bounce_reader_metrics_or_mbox_reader(tmp_path: Path) -> None:
    mail = tmp_path / "customer.eml"
    mail.write_bytes(CUSTOMER)
    (report,), loaded = _route(mail)
    assert report["kind"] == "customer" and report["subject"] == "Larmet piper"
    assert loaded == []


def test_a_bounce_loads_the_readers_and_is_read_as_one(tmp_path: Path) -> None:
    mail = tmp_path / "bounce.eml"
    mail.write_bytes(BOUNCE)
    (report,), loaded = _route(mail)
    assert report["kind"] == "bounce", report["reasons"]
    assert "gateway.mail.bounces.reader" in loaded
    assert "prometheus_client" not in loaded


def test_an_mbox_is_still_split_into_its_messages(tmp_path: Path) -> None:
    box = tmp_path / "two.mbox"
    second = CUSTOMER.replace(b"<a1@", b"<a2@").replace(b"Larmet piper", b"=?utf-8?q?D=C3=B6rren_l=C3=A5ser_inte?=")
    box.write_bytes(b"From anna@kund.example Tue Dec  1 10:00:00 2026\n" + CUSTOMER.replace(b"\r\n", b"\n")
                    + b"\nFrom anna@kund.example Tue Dec  1 10:05:00 2026\n" + second.replace(b"\r\n", b"\n"))
    reports, loaded = _route(box)
    assert [r["subject"] for r in reports] == ["Larmet piper", "Dörren låser inte"]
    assert "mailbox" in loaded


_THREADS = """
import atexit, sys, threading
started = []
_start = threading.Thread.start
def start(self):
    started.append(self.name)
    _start(self)
threading.Thread.start = start
atexit.register(lambda: print("THREADS " + ",".join(started)))
sys.argv = ["postdesk", "route", "--json", *sys.argv[1:]]
from gateway.cli import run
run()
"""


def _threads_of_route(path: Path, **settings: str) -> tuple[dict[str, object], list[str]]:
    done = subprocess.run([sys.executable, "-c", _THREADS, str(path)], cwd=REPO, env={**_clean_env(), **settings},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *lines, last = done.stdout.strip().splitlines()
    assert last.split(" ")[0] == "THREADS", done.stdout
    (report,) = [json.loads(line) for line in lines]
    return report, last.removeprefix("THREADS").strip().split(",")


def test_the_language_models_load_beside_the_set_up_and_still_name_the_language(tmp_path: Path) -> None:
    mail = tmp_path / "customer.eml"
    mail.write_bytes(CUSTOMER.replace(b"Hej, larmet piper hela tiden.",
                                      "Hej, larmet i trapphuset piper hela tiden och vi kan inte stänga av det.".encode()))
    report, threads = _threads_of_route(mail)
    assert "lingua-models" in threads
    (confirmation,) = [n for n in report["notifications"] if n["kind"] == "confirmation"]  # type: ignore[attr-defined]
    assert confirmation["language"] == "sv", confirmation
    # Without detection nothing is loaded for it, and the confirmation is in tickets.language.
    report, threads = _threads_of_route(mail, POSTDESK_TICKETS__DETECT_LANGUAGE="false")
    assert "lingua-models" not in threads
    assert [n["language"] for n in report["notifications"]] == ["en"]  # type: ignore[attr-defined]
