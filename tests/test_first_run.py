"""A first run without a relay: `serve` says in one line where it listens and that no relay
answers, the confirmation waits in the outbox, and a support lead sees it on the outbox page.
Before any first run, `postdesk route` already answers, and leaves no database behind."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.harness import REPO, Daemon, Database, Sink, free_port, make_mail, unique_address, wait_until
from tests.web.site import Client, local_path

LEAD = "lena.lead@telenta.example"


def test_first_run_shows_itself(backend: Database, sink: Sink, tmp_path: Path) -> None:
    config = tmp_path / "postdesk.yaml"
    config.write_text(f"agents:\n  - {{name: Lena Lead, address: {LEAD}, role: lead}}\n", encoding="utf-8")
    closed = free_port()  # nothing listens there: the fresh machine's missing relay
    metrics = free_port()
    desk = Daemon(backend, sink, tmp_path / "daemon.log",
                  env_extra={"POSTDESK_CONFIG": str(config), "POSTDESK_RELAY__PORT": str(closed),
                             "POSTDESK_METRICS__LISTEN": f"127.0.0.1:{metrics}"}).start()
    try:
        line = wait_until(lambda: next((ln for ln in desk.log_path.read_text().splitlines() if "listening:" in ln), None),
                          what="the listening line")
        assert f"SMTP on 127.0.0.1:{desk.port}" in line
        assert f"web page http://127.0.0.1:{desk.web_port}" in line and f"metrics on http://127.0.0.1:{metrics}/metrics" in line
        assert f"no relay answers on 127.0.0.1:{closed} (connection refused" in line and "postdesk outbox list" in line

        customer = unique_address()
        desk.send(make_mail(sender=customer, subject="Brandlarm"), sender=customer)
        wait_until(lambda: desk.db.scalar("SELECT count(*) FROM outbox WHERE rcpt_to = :c AND state = 'pending' "
                                          "AND attempts > 0", c=customer), what="a confirmation that waits")

        web = Client(desk.web_port)
        token = web.csrf("/signin")
        assert web.post("/signin", {"csrf": token, "email": LEAD, "next": "/outbox"}).status == 200
        raw = wait_until(lambda: desk.db.scalar("SELECT raw FROM outbox WHERE rcpt_to = :a AND kind = 'signin'", a=LEAD),
                         what="the sign-in mail in the outbox")
        body = email.message_from_bytes(bytes(raw), policy=email.policy.default).get_content()  # type: ignore[attr-defined]
        path = local_path(re.search(r"https?://\S+/signin/\S+", body).group(0))  # type: ignore[union-attr]
        assert web.post(path, {"csrf": web.csrf(path)}).status == 303
        page = web.get("/outbox")
        assert page.status == 200 and customer in page.text and "confirmation" in page.text
        assert "Connect call failed" in page.text, "the reason it waits"
    finally:
        desk.stop()



def test_route_before_the_first_run_needs_no_database_and_makes_none(tmp_path: Path) -> None:
    database = tmp_path / "store" / "postdesk.db"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")},
           "POSTDESK_DATABASE__URL": f"sqlite:///{database}", "POSTDESK_SECRET": "first-run"}
    mail = REPO / "tests" / "fixtures" / "mail" / "headers_lost_indent.eml"
    done = subprocess.run([sys.executable, "-m", "gateway", "route", "--json", str(mail)], cwd=REPO, env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["outcome"] == "created" and report["notifications"], report
    assert any(f"no database {database}" in note for note in report["notes"]), report["notes"]
    assert not database.parent.exists(), "a dry run creates no database file (nor its folder)"
