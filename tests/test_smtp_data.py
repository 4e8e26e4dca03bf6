"""The DATA reader that keeps one buffer (gateway/intake/data.py) answers as aiosmtpd's did:
dot-stuffed lines arrive unstuffed, an over-long line gets 500 after the data is drained, too
much data gets 552, and the session goes on with the next message either way. A `reject` rule
answers at DATA with 550 and its reason, checked in a worker thread, not on the event loop.
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.config import load_config
from gateway.db.engine import make_engine, upgrade
from gateway.intake.mailboxes import Mailboxes
from gateway.intake.smtp import IntakeHandler, start_server
from gateway.intake.writer import GroupWriter
from gateway.routing.runtime import RoutingState
from gateway.screen import RejectRules
from tests.harness import REPO, Daemon, free_port, make_mail, unique_address, wait_until


def _data(client: smtplib.SMTP, sender: str, raw: bytes) -> int:
    client.mail(sender)
    client.rcpt("support@telenta.example")
    code, _ = client.data(raw)
    client.rset()
    return code


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_dot_stuffing_long_lines_and_size(daemon: Daemon) -> None:
    sender = unique_address("data")
    body = ".a line that starts with a dot\n..two dots\n.\nend\n"
    with daemon.smtp() as client:
        client.sendmail(sender, ["support@telenta.example"], make_mail(sender=sender, subject="Dots", body=body))
        assert _data(client, sender, b"Subject: long\r\n\r\n" + b"x" * 70_000 + b"\r\n") == 500
        # Without SIZE= on MAIL FROM, so that the size is found out during DATA.
        assert _data(client, sender, b"Subject: big\r\n\r\n" + (b"y" * 999 + b"\r\n") * 400) == 552
        client.sendmail(sender, ["support@telenta.example"], make_mail(sender=sender, subject="After", body="ok\n"))
    wait_until(lambda: daemon.db.scalar("SELECT count(*) FROM inbound WHERE mail_from = :s", s=sender) == 2,
               what="both good messages stored")
    raw = daemon.db.scalar("SELECT raw FROM inbound WHERE mail_from = :s ORDER BY id LIMIT 1", s=sender)
    assert b"\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\nend\r\n" in raw


REJECT_RULE = """\
- name: reject at smtp
  match: {subject: {contains: "[reject]"}}
  reject: "We do not accept this here; use the portal"
"""


@dataclass
class ScreenedSession:
    """What one SMTP client saw from an in-process intake with a reject rule, and where it ran."""

    refused: smtplib.SMTPDataError
    accepted: dict[str, tuple[int, bytes]]
    loop_thread: int
    screen_threads: list[int]
    stored: int


def _screened_session(tmp_path: Path) -> ScreenedSession:
    """The daemon's SMTP intake in this process: real handler, writer and `RejectRules`, real SMTP."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-reject.yaml").write_text(REJECT_RULE, encoding="utf-8")
    config = load_config(REPO / "config" / "postdesk.yaml", environ={
        "POSTDESK_DATABASE__URL": f"sqlite:///{tmp_path / 'desk.db'}", "POSTDESK_SECRET": "x",
        "POSTDESK_RULES__DIR": str(rules), "POSTDESK_RULES__DIRECTORY": str(REPO / "config" / "directory.yaml"),
        "POSTDESK_SMTP__LISTEN": f"127.0.0.1:{free_port()}"})
    engine = make_engine(config.database.url)
    upgrade(engine)
    threads: list[int] = []

    class Recorded(RejectRules):
        def __call__(self, raw: bytes, rcpt_to: list[str], mail_from: str) -> str | None:
            threads.append(threading.get_ident())
            return super().__call__(raw, rcpt_to, mail_from)

    def client(port: int) -> tuple[smtplib.SMTPDataError, dict[str, tuple[int, bytes]]]:
        sender = unique_address("screen")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.sendmail(sender, ["support@telenta.example"], make_mail(sender=sender, subject="Order [reject]"))
            smtp.rset()
            accepted = smtp.sendmail(sender, ["support@telenta.example"], make_mail(sender=sender, subject="Order"))
        return refused.value, accepted

    async def session() -> ScreenedSession:
        pool = ThreadPoolExecutor(1)
        writer = GroupWriter(engine, pool)
        writer.start()
        handler = IntakeHandler(Mailboxes(config.mailboxes), writer, {}, Recorded(RoutingState(config)))
        server = await start_server(config, handler)
        refused, accepted = await asyncio.to_thread(client, config.smtp.host_port[1])
        server.close()
        await writer.close()
        pool.shutdown()
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM inbound")).scalar_one()
        return ScreenedSession(refused, accepted, threading.get_ident(), threads, stored)

    try:
        return asyncio.run(session())
    finally:
        engine.dispose()


def test_a_reject_rule_answers_the_client_at_data_with_its_code_and_reason(tmp_path: Path) -> None:
    outcome = _screened_session(tmp_path)
    assert outcome.refused.smtp_code == 550
    assert outcome.refused.smtp_error == b"5.7.1 We do not accept this here; use the portal"
    assert outcome.accepted == {}, "the mail no rule refuses is taken in the same session"
    assert outcome.stored == 1, "the refused mail is not stored"


def test_the_reject_rules_run_off_the_loop_that_feeds_the_watchdog(tmp_path: Path) -> None:
    outcome = _screened_session(tmp_path)
    assert len(outcome.screen_threads) == 2, "both messages were screened"
    assert outcome.loop_thread not in outcome.screen_threads, "parsing a whole message on the loop"
