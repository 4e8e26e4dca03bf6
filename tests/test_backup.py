"""Backups restore everything: `postdesk backup now` on a running installation, `postdesk restore`
into an empty database and an empty store (of the other kind: SQLite to PostgreSQL and back),
and the reply address, sign-in link and rating links mailed before the backup still work there.
"""

from __future__ import annotations

import re
import stat
import tarfile
from pathlib import Path

import pytest

from tests.conftest import _require_backend
from tests.harness import Daemon, Database, Sink, make_mail, unique_address, wait_until
from tests.web.site import Client, link_in, local_path

JOHAN = "johan.eklund@telenta.example"  # a member of fire-national in the shipped directory


def _daemon(db: Database, sink: Sink, store: Path, log: Path) -> Daemon:
    # No configured secret: the installation generates its own under its store, as by default.
    return Daemon(db, sink, log, env_extra={"POSTDESK_SECRET": "", "POSTDESK_STORE_DIR": str(store)})


def _number(sink: Sink, customer: str) -> int:
    found = re.search(r"\[#(\d+)\]", str(sink.wait_for(customer)[0].message["Subject"]))
    assert found
    return int(found.group(1))


def _links_before_the_backup(old: Daemon, sink: Sink, customer: str, rater: str) -> tuple[int, str, str, str]:
    """A ticket with an agent's reply address, a resolved one with rating links, a sign-in link."""
    old.send(make_mail(sender=customer, subject="Brandlarm tjuter", name="Anna Kund"), sender=customer)
    number = _number(sink, customer)
    notice = next(m for m in sink.wait_for(JOHAN) if f"[#{number}]" in str(m.message["Subject"]))
    reply_to = str(notice.message["Reply-To"])
    old.send(make_mail(sender=rater, subject="Brandlarm piper"), sender=rater)
    rated = _number(sink, rater)
    assert old.cli("ticket", "status", str(rated), "resolved", "-m", "Bytt batteri.").returncode == 0
    resolution = next(m for m in sink.wait_for(rater, 2) if "/feedback/" in m.raw.decode(errors="replace"))
    rating_link = re.findall(r"https?://\S+/feedback/\S+", resolution.message.get_body(("plain",)).get_content())[3]
    client = Client(old.web_port)
    asked = client.post("/signin", {"csrf": client.csrf("/signin"), "email": customer, "next": "/tickets"})
    assert asked.status == 200
    signin = next(m for m in sink.wait_for(customer, 2) if "/signin/" in m.raw.decode(errors="replace"))
    return number, reply_to, link_in(signin.message), rating_link


@pytest.mark.parametrize("kinds", [("sqlite", "postgresql"), ("postgresql", "sqlite")], ids=lambda k: "-to-".join(k))
def test_a_restored_backup_keeps_every_link_working(kinds: tuple[str, str], tmp_path: Path) -> None:
    for kind in kinds:
        _require_backend(kind)
    source, target = Database(kinds[0], tmp_path), Database(kinds[1], tmp_path)
    sink = Sink().start()  # of its own: ticket numbers start again in each fresh database
    old = _daemon(source, sink, tmp_path / "old-store", tmp_path / "old.log").start()
    try:
        customer, rater = unique_address("backup"), unique_address("rater")
        number, reply_to, signin, rating = _links_before_the_backup(old, sink, customer, rater)
        file = tmp_path / "postdesk.tar.gz"
        made = old.cli("backup", "now", "--to", str(file))
        assert made.returncode == 0, made.stderr
        assert "signing secret included" in made.stdout.decode() and "ticket:" in made.stdout.decode()
    finally:
        old.stop()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    with tarfile.open(file) as tar:
        assert tar.extractfile("secret.key").read() == (tmp_path / "old-store" / "secret.key").read_bytes()  # type: ignore[union-attr]

    new = _daemon(target, sink, tmp_path / "new-store", tmp_path / "new.log")
    restored = new.cli("restore", str(file))
    assert restored.returncode == 0, restored.stderr
    assert stat.S_IMODE((tmp_path / "new-store" / "secret.key").stat().st_mode) == 0o600
    assert new.cli("restore", str(file)).returncode == 1, "never into a database that holds rows"
    new.start()
    try:
        assert target.scalar("SELECT count(*) FROM ticket") == 2
        # The agent's reply address from the old notice still works the ticket.
        new.send(make_mail(sender=JOHAN, to=reply_to, subject=f"Re: [#{number}] Brandlarm tjuter",
                           body="Vi kommer i morgon klockan nio.\n", name="Johan Eklund"), sender=JOHAN, to=[reply_to])
        wait_until(lambda: any("klockan nio" in m.message.get_body(("plain",)).get_content() for m in sink.to(customer)),
                   what="the agent's reply relayed to the customer")
        # The sign-in link mailed before the backup signs in, once.
        client = Client(new.web_port)
        path = local_path(signin)
        done = client.post(path, {"csrf": client.csrf(path)})
        assert done.status == 303, done.text[:300]
        assert f"{number}" in client.get("/tickets").text
        # The rating link opens its page and its button records the rating.
        rater_client = Client(new.web_port)
        path = local_path(rating)
        assert "Send rating" in rater_client.get(path).text
        assert "You rated" in rater_client.post(path, {"csrf": rater_client.csrf(path), "score": "4"}).text
        assert target.scalar("SELECT score FROM rating") == 4
        # New rows get ids after the restored ones (PostgreSQL's sequences were moved on).
        fresh = unique_address("after")
        new.send(make_mail(sender=fresh, subject="Brandlarm igen"), sender=fresh)
        wait_until(lambda: target.scalar("SELECT count(*) FROM ticket") == 3, what="a ticket after the restore")
    finally:
        new.stop()
        sink.stop()
        source.drop()
        target.drop()
