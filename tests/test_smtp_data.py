"""The DATA reader that keeps one buffer (gateway/intake/data.py) answers as aiosmtpd's did:
dot-stuffed lines arrive unstuffed, an over-long line gets 500 after the data is drained, too
much data gets 552, and the session goes on with the next message either way.
"""

from __future__ import annotations

import smtplib

import pytest

from tests.harness import Daemon, make_mail, unique_address, wait_until


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
