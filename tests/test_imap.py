"""IMAP intake against a real Dovecot: pushed in seconds, never skipped, never doubled.

Each test starts its own Dovecot (tests/imap/dovecot.py) and a real daemon configured with a YAML
file naming the account, then puts mail into the folder the way other programs do (IMAP APPEND
from another client, or `doveadm save` as a delivery agent) and reads the outcome where it shows:
confirmations at the SMTP sink, rows in the database, messages in the server's folders.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.intake.imap.runner import chunks
from gateway.intake.imap.wire import encode_folder, uid_set
from tests.harness import REPO, Daemon, Database, Sink, make_mail, unique_address, wait_until
from tests.imap.dovecot import PASSWORD, USER, Dovecot, installed, make_certificate

HERE = Path(__file__).with_name("imap")
BOTH = pytest.mark.parametrize("fresh_db", ["sqlite", "postgresql"], indirect=True)
SQLITE = pytest.mark.parametrize("fresh_db", ["sqlite"], indirect=True)
IMPORTED = "Postdesk/Imported"


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def dovecot(certificate: tuple[Path, Path]) -> Iterator[Dovecot]:
    if not installed():
        if os.environ.get("POSTDESK_TEST_REQUIRE_DOVECOT"):
            pytest.fail("Dovecot is required (POSTDESK_TEST_REQUIRE_DOVECOT) but dovecot/doveadm are not installed")
        pytest.skip("Dovecot not installed (apt-get install dovecot-imapd); "
                    "POSTDESK_TEST_REQUIRE_DOVECOT=1 makes this a failure")
    server = Dovecot(*certificate).start()
    yield server
    server.cleanup()


def account(server: Dovecot, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "name": "support-imap", "mailbox": "support@telenta.example", "host": "127.0.0.1", "port": server.port,
        "tls": "plain", "allow_plain": True, "user": USER, "password": PASSWORD, "folder": "INBOX",
        "after_import": "move", "move_to": IMPORTED, "idle": True, "poll_interval": 300, "timeout": 10,
    }
    settings.update(overrides)
    return settings


def write_config(folder: Path, accounts: list[dict[str, Any]]) -> Path:
    """The shipped settings file with these IMAP accounts; ports and database come from POSTDESK_*."""
    settings = yaml.safe_load((REPO / "config" / "postdesk.yaml").read_text()) or {}
    settings.setdefault("imap", {})["accounts"] = accounts
    path = folder / f"postdesk-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


Start = Callable[..., Daemon]


@pytest.fixture
def start(sink: Sink, dovecot: Dovecot, certificate: tuple[Path, Path], tmp_path: Path) -> Iterator[Start]:
    """Start a daemon on `db` importing `accounts`; every daemon started is stopped afterwards."""
    started: list[Daemon] = []

    def run(db: Database, *accounts: dict[str, Any], port: int | None = None,
            fault: tuple[str, int] | None = None) -> Daemon:
        extra = {"POSTDESK_CONFIG": str(write_config(tmp_path, list(accounts))), "SSL_CERT_FILE": str(certificate[0])}
        daemon = Daemon(db, sink, tmp_path / f"daemon-{len(started)}.log", env_extra=extra)
        if port is not None:
            daemon.port = port
        started.append(daemon)
        return daemon.start() if fault is None else with_fault(daemon, *fault)

    yield run
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()


def with_fault(daemon: Daemon, fault: str, count: int) -> Daemon:
    """Start `daemon` with a fault put in from outside (tests/imap/faults.py), and wait until it
    listens or, as a crash may come first, has ended."""
    with daemon.log_path.open("ab") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "tests.imap.faults", fault, str(count), "serve"],
                                cwd=REPO, env=daemon.env(), stdout=log_file, stderr=log_file)
    daemon.proc = proc

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", daemon.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    wait_until(lambda: proc.poll() is not None or listening(), timeout=30, what="the daemon listening, or ended")
    return daemon


def full_log(daemon: Daemon) -> str:
    return daemon.log_path.read_text(errors="replace")


def watching(daemon: Daemon, how: str = "by IDLE") -> None:
    wait_until(lambda: how in full_log(daemon), timeout=20, what=f"the IMAP runner {how}: {daemon.log()}")


def settled(db: Database) -> bool:
    """Everything queued was processed and every confirmation handed to the sink."""
    return (db.scalar("SELECT count(*) FROM inbound WHERE state = 'queued'") == 0
            and db.scalar("SELECT count(*) FROM outbox WHERE state = 'pending'") == 0)


def imported(db: Database) -> int:
    return int(db.scalar("SELECT count(*) FROM inbound WHERE source = 'imap'"))


def each_imported_once(db: Database, sink: Sink, customers: list[str]) -> None:
    """Every customer's mail became one ticket with one confirmation, and none was queued twice."""
    for customer in customers:
        sink.wait_for(customer, timeout=30)
    wait_until(lambda: settled(db), what="all processed")
    assert [len(sink.to(c)) for c in customers] == [1] * len(customers), "one confirmation, one ticket each"
    assert imported(db) == len(customers), "no message was queued twice"


def mails(count: int, tag: str) -> tuple[list[str], list[bytes]]:
    customers = [unique_address(f"{tag}{i}") for i in range(count)]
    return customers, [make_mail(sender=c, subject=f"{tag} {i}: larmet tjuter") for i, c in enumerate(customers)]


@BOTH
def test_mail_in_the_folder_becomes_a_ticket_within_5_seconds_through_idle(
        fresh_db: Database, start: Start, dovecot: Dovecot, sink: Sink) -> None:
    # Implicit TLS on the IMAPS port, certificate verified; polling (300 s) cannot be what delivers.
    daemon = start(fresh_db, account(dovecot, tls="implicit", port=dovecot.tls_port, allow_plain=False))
    watching(daemon)
    customer = unique_address("idle")
    began = time.monotonic()
    dovecot.deliver("INBOX", make_mail(sender=customer, subject="Brandlarm via IMAP"))
    confirmation = sink.wait_for(customer, timeout=5)[0]
    print(f"\n[{fresh_db.kind}] delivery to confirmation at the sink through IDLE: {time.monotonic() - began:.2f} s")
    assert confirmation.mail_from == "support@telenta.example"
    row = fresh_db.rows("SELECT source, mail_from, rcpt_to FROM inbound")[0]
    assert tuple(row) == ("imap", "", "support@telenta.example"), "unknown envelope sender, not the null sender"
    wait_until(lambda: dovecot.count(IMPORTED) == 1, what="the message moved to the imported folder")
    assert dovecot.count("INBOX") == 0


@SQLITE
def test_poll_fallback_imports_with_idle_off(fresh_db: Database, start: Start, dovecot: Dovecot, sink: Sink) -> None:
    daemon = start(fresh_db, account(dovecot, idle=False, poll_interval=0.5))
    watching(daemon, "by polling every 0.5 s")
    customer = unique_address("poll")
    dovecot.append("INBOX", make_mail(sender=customer, subject="Passagesystem"))
    sink.wait_for(customer, timeout=5)
    assert "IDLE" not in full_log(daemon).split("watching", 1)[1].splitlines()[0]


@BOTH
def test_server_restarted_in_the_middle_of_a_batch_imports_each_message_once(
        fresh_db: Database, start: Start, dovecot: Dovecot, sink: Sink) -> None:
    customers, raws = mails(50, "restart")
    dovecot.append("INBOX", *raws)
    # The first chunk of 20 is committed, then the daemon holds before moving it: the restart
    # comes between the commit and the move, with 30 messages not fetched yet.
    daemon = start(fresh_db, account(dovecot), fault=("hold-after-commit", 20))
    wait_until(lambda: fresh_db.scalar("SELECT count(*) FROM imapseen") == 20, what="the first chunk committed")
    assert dovecot.count("INBOX") == 50, "nothing moved yet"
    dovecot.restart()
    each_imported_once(fresh_db, sink, customers)
    assert fresh_db.scalar("SELECT count(*) FROM imapseen WHERE done") == 50
    wait_until(lambda: dovecot.count(IMPORTED) == 50, what="every message in the imported folder, once")
    assert dovecot.count("INBOX") == 0
    log = full_log(daemon)
    assert "finishing the move of 20 message(s)" in log, log[-3000:]
    assert "working again" in log


@BOTH
def test_kill_9_between_commit_and_move_never_doubles_a_ticket(
        fresh_db: Database, start: Start, dovecot: Dovecot, sink: Sink) -> None:
    customers, raws = mails(12, "crash")
    dovecot.append("INBOX", *raws)
    first = start(fresh_db, account(dovecot), fault=("crash-after-commit", 1))
    assert first.proc is not None
    assert first.proc.wait(30) == -signal.SIGKILL
    assert fresh_db.scalar("SELECT count(*) FROM imapseen WHERE NOT done") == 12, "committed, not moved"
    assert dovecot.count("INBOX") == 12 and dovecot.count(IMPORTED) == 0
    # Same port, so the same instance name: leases of the killed run are released at start.
    second = start(fresh_db, account(dovecot), port=first.port)
    # The UIDs committed before the kill are not imported again.
    each_imported_once(fresh_db, sink, customers)
    wait_until(lambda: dovecot.count("INBOX") == 0, what="the interrupted move finished")
    assert dovecot.count(IMPORTED) == 12, "the imported folder received each message once"
    assert "finishing the move of 12 message(s)" in full_log(second)


@BOTH
def test_uidvalidity_change_imports_again_without_duplicate_tickets(
        fresh_db: Database, start: Start, dovecot: Dovecot, sink: Sink) -> None:
    customers, raws = mails(3, "uidv")
    dovecot.create("Support")
    dovecot.append("Support", *raws[:2])
    daemon = start(fresh_db, account(dovecot, folder="Support", after_import="flag"))
    for customer in customers[:2]:
        sink.wait_for(customer)
    before = fresh_db.scalar("SELECT uidvalidity FROM imapstate")
    # Folder deleted and restored, a new message first: new UIDVALIDITY, UIDs from 1 again, so
    # the new message's UID 1 is below the old cursor and only UIDVALIDITY tells it is new.
    with dovecot.imap() as client:
        assert client.delete('"Support"')[0] == "OK"
        assert client.create('"Support"')[0] == "OK"
    dovecot.append("Support", raws[2], raws[0], raws[1])
    sink.wait_for(customers[2])
    wait_until(lambda: imported(fresh_db) == 5 and settled(fresh_db), what="the folder imported again")
    assert [len(sink.to(c)) for c in customers] == [1, 1, 1]
    assert fresh_db.scalar("SELECT count(*) FROM ticket") == 3
    assert fresh_db.scalar("SELECT count(*) FROM inbound WHERE note LIKE 'duplicate%'") == 2
    assert fresh_db.scalar("SELECT uidvalidity FROM imapstate") != before
    assert "UIDVALIDITY of Support changed" in full_log(daemon)


@BOTH
def test_unparseable_message_goes_to_quarantine_and_the_ones_behind_it_are_imported(
        fresh_db: Database, start: Start, dovecot: Dovecot, sink: Sink) -> None:
    daemon = start(fresh_db, account(dovecot))
    watching(daemon)
    customer = unique_address("behind")
    no_sender, broken = (HERE / "no-sender.eml").read_bytes(), (HERE / "broken-mime.eml").read_bytes()
    dovecot.append("INBOX", no_sender, broken, make_mail(sender=customer, subject="after the broken ones"))
    sink.wait_for(customer)
    wait_until(lambda: settled(fresh_db), what="all processed")
    states = dict(fresh_db.rows("SELECT raw, state FROM inbound WHERE source = 'imap'"))
    assert states[no_sender] == "quarantined"
    assert states[broken] in ("done", "quarantined")
    assert "no sender" in fresh_db.scalar(
        "SELECT q.reason FROM quarantine q JOIN inbound i ON i.id = q.inbound_id WHERE i.raw = :r", r=no_sender)
    wait_until(lambda: dovecot.count(IMPORTED) == 3, what="all three moved")
    assert dovecot.count("INBOX") == 0, "nothing left behind in the folder"


@SQLITE
def test_wrong_password_is_one_clear_log_line_and_no_retry_storm(
        fresh_db: Database, start: Start, dovecot: Dovecot, tmp_path: Path) -> None:
    secret = tmp_path / "imap.pass"
    secret.write_text("not-the-password\n")
    daemon = start(fresh_db, account(dovecot, password=None, password_file=str(secret)))
    wait_until(lambda: "cannot log in" in full_log(daemon), what="the login failure logged")
    # Watch for a while: a client retrying on its usual 1-2 s backoff would try again here.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert dovecot.login_failures() <= 1, f"retried within seconds: {dovecot.log()}"
        time.sleep(0.1)
    assert dovecot.login_failures() == 1
    lines = [line for line in full_log(daemon).splitlines() if "cannot log in" in line]
    assert len(lines) == 1, lines
    assert "ERROR gateway.imap: support-imap:" in lines[0] and f"127.0.0.1:{dovecot.port}" in lines[0]
    assert "AUTHENTICATIONFAILED" in lines[0] and "password" in lines[0] and "every 5 min" in lines[0]


@BOTH
def test_move_and_flag_accounts_side_by_side(fresh_db: Database, start: Start, dovecot: Dovecot, sink: Sink) -> None:
    # Swedish folder names travel in IMAP's modified UTF-7: Åtgärdat is &AMU-tg&AOQ-rdat.
    done = "Postdesk/Åtgärdat"
    support, order_seen, order_new = unique_address("moved"), unique_address("seen"), unique_address("flagged")
    dovecot.create("Orders")
    # Already read in another mail client: imported all the same (flags are not our marker).
    dovecot.append("Orders", make_mail(sender=order_seen, subject="Order 1", to="order@telenta.example"), seen=True)
    dovecot.append("Orders", make_mail(sender=order_new, subject="Order 2", to="order@telenta.example"))
    dovecot.append("INBOX", make_mail(sender=support, subject="Support"))
    start(fresh_db, account(dovecot, move_to=done),
          account(dovecot, name="orders-imap", mailbox="order@telenta.example", folder="Orders", after_import="flag"))
    assert sink.wait_for(support)[0].mail_from == "support@telenta.example"
    assert sink.wait_for(order_seen)[0].mail_from == "order@telenta.example"
    assert sink.wait_for(order_new)[0].mail_from == "order@telenta.example"
    wait_until(lambda: all("\\Seen" in flags for flags in dovecot.flags("Orders")), what="both orders flagged")
    assert dovecot.count("Orders") == 2, "flag keeps the messages where they are"
    wait_until(lambda: dovecot.count("Postdesk/&AMU-tg&AOQ-rdat") == 1, what="the support message moved")
    assert dovecot.count("INBOX") == 0
    assert imported(fresh_db) == 3


def test_folder_names_uid_sets_and_chunks() -> None:
    assert encode_folder("Postdesk/Åtgärdat") == '"Postdesk/&AMU-tg&AOQ-rdat"'
    assert encode_folder('R&D "x"') == '"R&-D \\"x\\""'
    assert encode_folder("日本語") == '"&ZeVnLIqe-"'
    assert uid_set([7, 1, 2, 3, 9, 10, 3]) == "1:3,7,9:10"
    big = 5 * 1024 * 1024
    assert [len(c) for c in chunks([(uid, 100) for uid in range(1, 46)])] == [20, 20, 5]
    assert [[uid for uid, _ in c] for c in chunks([(1, big), (2, big), (3, 10)])] == [[1], [2, 3]]


def _imap_test(config: Path, name: str, db: Database, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_") and k != "SSL_CERT_FILE"}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "imap", "test", name], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**clean, "POSTDESK_CONFIG": str(config), "POSTDESK_DATABASE__URL": db.url, **env},
    )


@SQLITE
def test_imap_test_command_reports_what_an_import_would_do_and_changes_nothing(
        fresh_db: Database, dovecot: Dovecot, certificate: tuple[Path, Path], tmp_path: Path) -> None:
    dovecot.append("INBOX", make_mail(sender="first@kund.example", subject="Larm i hiss"), seen=True)
    dovecot.append("INBOX", make_mail(sender="second@kund.example", subject="Faktura"))
    config = write_config(tmp_path, [
        account(dovecot, name="implicit", tls="implicit", port=dovecot.tls_port, allow_plain=False),
        account(dovecot, name="starttls", tls="starttls", allow_plain=False, after_import="flag", idle=False),
        account(dovecot, name="wrong", password="nope"),
    ])
    trusted = {"SSL_CERT_FILE": str(certificate[0])}
    result = _imap_test(config, "implicit", fresh_db, trusted)
    print("\n" + result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"user {USER} at 127.0.0.1:{dovecot.tls_port} (tls: implicit)" in out
    assert "IDLE yes, MOVE yes, UIDPLUS yes" in out
    assert "folder INBOX: 2 message(s), UIDVALIDITY" in out
    assert "stored state: none yet" in out
    assert "would import 2 message(s), UIDs 1:2" in out and "as mail to support@telenta.example" in out
    assert "from first@kund.example, subject 'Larm i hiss'" in out and "already seen" in out
    assert f"then move them to {IMPORTED} (created at the first import)" in out
    assert "noticed at once by IDLE" in out and "nothing was changed" in out
    # Read-only indeed: no folder created, no flag set.
    assert not dovecot.exists(IMPORTED)
    assert ["\\Seen" in flags for flags in dovecot.flags("INBOX")] == [True, False]

    starttls = _imap_test(config, "starttls", fresh_db, trusted)
    assert starttls.returncode == 0, starttls.stdout + starttls.stderr
    assert "then flag them \\Seen" in starttls.stdout and "polling every 300 s (idle: false)" in starttls.stdout

    untrusted = _imap_test(config, "implicit", fresh_db, {})
    assert untrusted.returncode == 1 and "certificate verify failed" in untrusted.stdout, untrusted.stdout

    wrong = _imap_test(config, "wrong", fresh_db, trusted)
    assert wrong.returncode == 1 and "login refused" in wrong.stdout and "AUTHENTICATIONFAILED" in wrong.stdout

    unknown = _imap_test(config, "nosuch", fresh_db, trusted)
    assert unknown.returncode == 78 and "implicit, starttls, wrong" in unknown.stderr


@BOTH
def test_one_mail_in_two_imported_mailboxes_is_one_ticket(
        fresh_db: Database, start: Start, dovecot: Dovecot, sink: Sink) -> None:
    """The same mail to support@ and service@ lands in both mailboxes' folders: one message."""
    dovecot.create("Service")
    start(fresh_db, account(dovecot, poll_interval=0.5, idle=False),
          account(dovecot, name="service-imap", mailbox="service@telenta.example", folder="Service",
                  poll_interval=0.5, idle=False))
    customer = unique_address("both")
    raw = make_mail(sender=customer, subject="Brandlarm tjuter", to="support@telenta.example, service@telenta.example")
    dovecot.append("INBOX", raw)
    dovecot.append("Service", raw)
    wait_until(lambda: fresh_db.scalar("SELECT count(*) FROM inbound WHERE source = 'imap' AND state = 'done'") == 2,
               what="both copies imported and processed")
    wait_until(lambda: settled(fresh_db), what="all processed")
    assert fresh_db.scalar("SELECT count(*) FROM ticket") == 1
    assert fresh_db.scalar("SELECT count(*) FROM message WHERE direction = 'in'") == 1
    assert len(sink.wait_for(customer)) == 1 and fresh_db.scalar(
        "SELECT count(*) FROM outbox WHERE rcpt_to = :c", c=customer) == 1
