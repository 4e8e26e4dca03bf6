"""`postdesk outbox list|show|retry`: dead mail is listed with the relay's answer, shown with its
headers and text, and delivered once requeued; mail that is not dead is left alone.

A real daemon on each store (SQLite, PostgreSQL) whose relay, the test's sink, refuses one recipient for good until the
test "fixes" it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Daemon, Database, Sink, make_mail, unique_address, wait_until


@pytest.fixture(scope="module")
def daemon(backend: Database, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon on each store (the `backend` fixture: SQLite and PostgreSQL)."""
    folder = tmp_path_factory.mktemp("outbox")
    db = backend
    proc = Daemon(db, sink, folder / "daemon.log").start()
    yield proc
    proc.stop()


def _dead_confirmation(daemon: Daemon, sink: Sink) -> tuple[str, int]:
    customer = unique_address("dead")
    sink.refuse = lambda rcpts: "550 5.1.1 mailbox unavailable" if customer in rcpts else None
    daemon.send(make_mail(sender=customer, subject="Larmet tjuter", body="Hej!\n"), sender=customer)
    mail_id = wait_until(lambda: daemon.db.scalar("SELECT id FROM outbox WHERE rcpt_to = :c AND state = 'dead'",
                                                  c=customer), what="the confirmation dead")
    return customer, int(mail_id)


def test_dead_mail_is_listed_shown_and_delivered_once_retried(daemon: Daemon, sink: Sink) -> None:
    customer, mail_id = _dead_confirmation(daemon, sink)
    listed = daemon.cli("outbox", "list").stdout.decode()
    line = next(line for line in listed.splitlines() if line.split()[0] == str(mail_id))
    assert "dead" in line and customer in line and "550 5.1.1" in line

    shown = daemon.cli("outbox", "show", str(mail_id)).stdout.decode()
    assert f"To: {customer}" in shown and re.search(r"^Subject: .*\[#\d+\]", shown, re.M)
    assert "550 5.1.1" in shown
    assert f"To: {customer}".encode() in daemon.cli("outbox", "show", str(mail_id), "--raw").stdout

    sink.refuse = lambda rcpts: None  # the admin fixed the cause
    answer = daemon.cli("outbox", "retry", str(mail_id))
    assert answer.returncode == 0 and b"1 dead mail(s) queued again" in answer.stdout
    delivered = sink.wait_for(customer)
    assert len(delivered) == 1
    wait_until(lambda: daemon.db.scalar("SELECT state FROM outbox WHERE id = :i", i=mail_id) == "sent", what="sent")
    # Retrying again changes nothing: sent mail never goes out twice.
    again = daemon.cli("outbox", "retry", str(mail_id))
    assert b"0 dead mail(s) queued again" in again.stdout and str(mail_id).encode() in again.stderr


def test_retry_all_and_filters(daemon: Daemon, sink: Sink) -> None:
    first, first_id = _dead_confirmation(daemon, sink)
    second, second_id = _dead_confirmation(daemon, sink)
    only = daemon.cli("outbox", "list", "--to", second).stdout.decode()
    assert str(second_id) in only and first not in only
    assert "no pending mail" in daemon.cli("outbox", "list", "--state", "pending", "--to", first).stdout.decode()
    sink.refuse = lambda rcpts: None
    answer = daemon.cli("outbox", "retry", "--all")
    assert answer.returncode == 0
    assert len(sink.wait_for(first)) == 1 and len(sink.wait_for(second)) == 1


def test_retry_needs_ids_or_all(daemon: Daemon) -> None:
    answer = daemon.cli("outbox", "retry")
    assert answer.returncode == 2 and b"--all" in answer.stderr
    help_text = daemon.cli("outbox", "--help").stdout.decode()
    assert all(verb in help_text for verb in ("list", "show", "retry"))


def test_readme_documents_the_verbs() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "`postdesk outbox list" in readme and "retry ID" in readme
