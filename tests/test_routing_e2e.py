"""Routing over the wire: rules in a folder of YAML, a daemon on SQLite and PostgreSQL, real SMTP.

One rules folder holds a rule for each match type and action, each keyed to its own subject
marker so the tests do not disturb each other; the directory is the shipped one.
"""

from __future__ import annotations

import json
import shutil
import signal
import smtplib
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import REPO, Daemon, Database, Sink, make_mail, unique_address, wait_until

RULES = textwrap.dedent("""\
    - name: header match
      match: {header: {X-Alarm-Panel: {regex: "^ZX-\\\\d+$"}}}
      set: {department: fire-stockholm, tags: [panel]}
    - name: continue adds a tag
      match: {subject: {contains: "[chain]"}}
      set: {tags: [first], priority: low}
      continue: true
    - name: after continue
      match: {subject: {contains: "[chain]"}}
      set: {tags: [second], department: sales}
    - name: capture picks the local team
      match: {subject: {regex: "\\\\[city (?P<city>stockholm|goteborg)\\\\]"}}
      set: {department: "fire-{city}", fields: {site: "{city}"}}
    - name: one-of sender domain
      match: {from_domain: {one_of: [vip.example, partner.example]}}
      set: {priority: urgent, department: sales}
    - name: negation and any-group
      match:
        subject: {contains: "[group]"}
        any:
          - body: {contains: "akut"}
          - header: {X-Priority: "1"}
        not: {from: nobody@kund.example}
      set: {priority: high, department: access-national}
    - name: attachment goes to orders
      match: {subject: {contains: "[attach]"}, has_attachment: true}
      set: {department: orders}
    - name: no confirmation for newsletters
      match: {subject: {contains: "[quiet]"}}
      set: {confirm: false, department: sales}
    - name: quarantine suspicious
      match: {subject: {contains: "[suspicious]"}}
      quarantine: "suspicious subject"
    - name: drop spam
      match: {subject: {contains: "[spam]"}}
      drop: "known spam"
    - name: reject at smtp
      match: {subject: {contains: "[reject]"}}
      reject: "We do not accept this here; use the portal"
    - name: follow-ups tagged
      match: {followup: true, subject: {contains: "[fu]"}}
      set: {tags: [followup-seen]}
    """)


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rules")
    (folder / "10-tests.yaml").write_text(RULES, encoding="utf-8")
    shutil.copy(REPO / "rules" / "10-topics.yaml", folder / "20-topics.yaml")
    return folder


@pytest.fixture(scope="module")
def routed(backend: Database, sink: Sink, rules_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    env = {"POSTDESK_RULES__DIR": str(rules_dir), "POSTDESK_RULES__WATCH_INTERVAL": "0.2"}
    proc = Daemon(backend, sink, tmp_path_factory.mktemp("log") / "daemon.log", env_extra=env).start()
    yield proc
    proc.stop()


def _ticket(daemon: Daemon, sender: str) -> dict[str, object]:
    row = wait_until(lambda: daemon.db.rows(
        "SELECT t.number, t.department, t.priority, t.tags, t.topic, t.fields, t.missing_fields, m.trace "
        "FROM ticket t JOIN customer c ON c.id = t.customer_id JOIN message m ON m.ticket_id = t.id "
        "WHERE c.email = :e AND m.direction = 'in' ORDER BY t.id", e=sender), what=f"ticket of {sender}")
    first = row[0]
    return {"number": first[0], "department": first[1], "priority": first[2], "tags": first[3], "topic": first[4],
            "fields": json.loads(first[5]), "missing": first[6], "trace": json.loads(first[7]), "count": len(row)}


def _send(daemon: Daemon, subject: str, *, sender: str | None = None, body: str = "Hej.\n",
          headers: dict[str, str] | None = None, to: str = "support@telenta.example") -> str:
    sender = sender or unique_address()
    daemon.send(make_mail(sender=sender, subject=subject, body=body, headers=headers, to=to), sender=sender, to=[to])
    return sender


def test_header_regex_sets_department_and_tag(routed: Daemon) -> None:
    ticket = _ticket(routed, _send(routed, "Panel fault", headers={"X-Alarm-Panel": "ZX-42"}))
    assert ticket["department"] == "fire-stockholm" and ticket["tags"] == "panel"
    assert ticket["trace"]["rules"]["support@telenta.example"] == ["header match"]


def test_continue_merges_tags_and_later_rule_overrides(routed: Daemon) -> None:
    ticket = _ticket(routed, _send(routed, "Help [chain]"))
    assert ticket["tags"] == "first,second"
    assert ticket["department"] == "sales" and ticket["priority"] == "low"


def test_named_capture_fills_department_and_field(routed: Daemon) -> None:
    ticket = _ticket(routed, _send(routed, "Larm [city goteborg]"))
    assert ticket["department"] == "fire-goteborg" and ticket["fields"]["site"] == "goteborg"


def test_one_of_domain(routed: Daemon) -> None:
    ticket = _ticket(routed, _send(routed, "Question", sender=unique_address().replace("kund.example", "vip.example")))
    assert ticket["priority"] == "urgent"


def test_any_group_with_negation(routed: Daemon) -> None:
    assert _ticket(routed, _send(routed, "Door [group]", body="Det är akut!\n"))["department"] == "access-national"
    plain = _ticket(routed, _send(routed, "Door [group]", body="Inget bråttom.\n"))
    assert plain["department"] != "access-national"


def test_has_attachment(routed: Daemon) -> None:
    sender = unique_address()
    msg = make_mail(sender=sender, subject="Order [attach]")
    from email import message_from_bytes, policy

    parsed = message_from_bytes(msg, policy=policy.default)
    parsed.add_attachment(b"%PDF-1.4 order", maintype="application", subtype="pdf", filename="order.pdf")
    routed.send(parsed.as_bytes(), sender=sender)
    assert _ticket(routed, sender)["department"] == "orders"


def test_confirm_false_sends_nothing(routed: Daemon, sink: Sink) -> None:
    sender = _send(routed, "Newsletter [quiet]")
    assert _ticket(routed, sender)["department"] == "sales"
    loud = _send(routed, "Normal question")
    sink.wait_for(loud)  # the daemon has sent mail since; none of it went to the quiet sender
    assert sink.to(sender) == []


def test_quarantine_action_keeps_message_with_reason(routed: Daemon) -> None:
    sender = _send(routed, "Click here [suspicious]")
    reason = wait_until(lambda: routed.db.scalar(
        "SELECT q.reason FROM quarantine q JOIN inbound i ON i.id = q.inbound_id WHERE i.mail_from = :s", s=sender),
        what="quarantine entry")
    assert "quarantine suspicious" in reason and "suspicious subject" in reason


def test_drop_action_is_logged_and_stores_no_ticket(routed: Daemon) -> None:
    sender = _send(routed, "Cheap pills [spam]")
    note = wait_until(lambda: routed.db.scalar(
        "SELECT note FROM inbound WHERE mail_from = :s AND state = 'done'", s=sender), what="drop")
    assert "drop spam" in note and "known spam" in note
    assert routed.db.scalar("SELECT count(*) FROM customer WHERE email = :e", e=sender) == 0
    assert "known spam" in routed.log()


def test_reject_action_refuses_at_smtp_time(routed: Daemon) -> None:
    sender = unique_address()
    with pytest.raises(smtplib.SMTPDataError) as caught:
        routed.send(make_mail(sender=sender, subject="Order via mail [reject]"), sender=sender)
    assert caught.value.smtp_code == 550
    assert b"use the portal" in caught.value.smtp_error
    assert routed.db.scalar("SELECT count(*) FROM inbound WHERE mail_from = :s", s=sender) == 0


def test_followup_match(routed: Daemon, sink: Sink) -> None:
    sender = _send(routed, "Start")
    number = _ticket(routed, sender)["number"]
    _send(routed, f"Re: [#{number}] more [fu]", sender=sender, body="Mer info.\n")
    trace = wait_until(lambda: routed.db.scalar(
        "SELECT trace FROM message WHERE author = :a AND text LIKE 'Mer info%'", a=sender), what="follow-up")
    assert json.loads(trace)["rules"]["support@telenta.example"][0] == "follow-ups tagged"


def test_organisation_beats_topic(routed: Daemon) -> None:
    # goteborgshamn.example belongs to Göteborgs Hamn AB, whose department is access-goteborg
    # in the shipped directory; the subject names the fire alarm topic.
    ticket = _ticket(routed, _send(routed, "Brandlarm tjuter", sender=unique_address().replace("kund.example", "goteborgshamn.example")))
    assert ticket["topic"] == "Brandlarm"
    assert ticket["department"] == "access-goteborg"
    assert ticket["trace"]["department_from"]["support@telenta.example"] == "organisation"
    newcomer = _ticket(routed, _send(routed, "Brandlarm tjuter"))
    assert newcomer["department"] == "fire-national"


def test_new_customer_is_asked_for_missing_fields_until_a_reply_supplies_them(routed: Daemon, sink: Sink) -> None:
    sender = _send(routed, "Brandlarm tjuter", body="Hej, larmet tjuter.\nAnläggning: Storgatan 5\n")
    ticket = _ticket(routed, sender)
    assert ticket["fields"]["facility"] == "Storgatan 5"
    assert set(ticket["missing"].split(",")) == {"municipality", "occurred_at"}
    confirmation = sink.wait_for(sender)[0].message.get_content()
    assert "Kommun/Företag:" in confirmation and "När inträffade felet:" in confirmation
    assert "Anläggning:" not in confirmation
    _send(routed, f"Re: [#{ticket['number']}]", sender=sender, body="Kommun/Företag: Kiruna kommun\nNär inträffade felet: i natt\n")
    wait_until(lambda: routed.db.scalar("SELECT missing_fields FROM ticket WHERE number = :n", n=ticket["number"]) == "",
               what="fields supplied")
    fields = json.loads(routed.db.scalar("SELECT fields FROM ticket WHERE number = :n", n=ticket["number"]))
    assert fields == {"facility": "Storgatan 5", "municipality": "Kiruna kommun", "occurred_at": "i natt"}


def test_mail_to_two_mailboxes_fans_out_once_and_reply_all_updates_each_once(routed: Daemon, sink: Sink) -> None:
    sender = unique_address()
    raw = make_mail(sender=sender, subject="Brandlarm och beställning", to="support@telenta.example, order@telenta.example")
    routed.send(raw, sender=sender, to=["support@telenta.example", "order@telenta.example"])
    confirmations = sink.wait_for(sender, 2)
    rows = routed.db.rows(
        "SELECT t.number, t.department FROM ticket t JOIN customer c ON c.id = t.customer_id WHERE c.email = :e ORDER BY t.id",
        e=sender)
    assert sorted(r[1] for r in rows) == ["fire-national", "orders"]
    assert routed.db.scalar("SELECT count(*) FROM inbound WHERE mail_from = :s", s=sender) == 1, "stored once"
    # The same message delivered again (an MTA retry) adds nothing.
    routed.send(raw, sender=sender, to=["support@telenta.example", "order@telenta.example"])
    # Reply-all to one confirmation, as a mail client does: References carry the original.
    first = confirmations[0].message
    reply = make_mail(sender=sender, subject="Re: both", body="Reply to everyone.\n",
                      to="support@telenta.example, order@telenta.example",
                      headers={"In-Reply-To": first["Message-ID"], "References": f"{first['References']} {first['Message-ID']}"})
    routed.send(reply, sender=sender, to=["support@telenta.example", "order@telenta.example"])
    wait_until(lambda: routed.db.scalar("SELECT count(*) FROM inbound WHERE mail_from = :s AND state = 'done'", s=sender) == 3,
               what="all processed")
    counts = routed.db.rows(
        "SELECT t.number, count(m.id) FROM ticket t JOIN customer c ON c.id = t.customer_id "
        "JOIN message m ON m.ticket_id = t.id AND m.direction = 'in' WHERE c.email = :e GROUP BY t.number", e=sender)
    assert sorted(n for _, n in counts) == [2, 2], counts
    assert len(sink.to(sender)) == 2


def test_broken_rules_file_keeps_the_rules_in_force(routed: Daemon, rules_dir: Path, sink: Sink) -> None:
    good = (rules_dir / "10-tests.yaml").read_text(encoding="utf-8")
    try:
        (rules_dir / "10-tests.yaml").write_text(good + "- name: broken\n  match: {subject: {regex: '(unclosed'}}\n  set: {department: sales}\n",
                                                 encoding="utf-8")
        routed.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_until(lambda: "rules not reloaded" in routed.log(), what="reload refused")
        assert "10-tests.yaml:" in routed.log()
        ticket = _ticket(routed, _send(routed, "Help [chain]"))
        assert ticket["tags"] == "first,second", "the old rules still route"
    finally:
        (rules_dir / "10-tests.yaml").write_text(good, encoding="utf-8")


def test_changed_rules_file_is_picked_up_without_restart(routed: Daemon, rules_dir: Path) -> None:
    extra = rules_dir / "05-hot.yaml"
    # The test before also reloads: wait for one more reload than the log already shows.
    reloads = routed.log_path.read_text(errors="replace").count("rules reloaded (files changed)")
    try:
        extra.write_text("- name: hot reload\n  match: {subject: {contains: '[hot]'}}\n  set: {department: orders}\n",
                         encoding="utf-8")
        wait_until(lambda: routed.log_path.read_text(errors="replace").count("rules reloaded (files changed)") > reloads,
                   what="reload")
        assert _ticket(routed, _send(routed, "Now [hot]"))["department"] == "orders"
    finally:
        extra.unlink()


BROKEN_FILES = {
    "bad yaml": ("- name: x\n  match: {subject: a}\n  set: {department: sales\n- name: y\n", "01.yaml:4"),
    "unknown key": ("- name: x\n  matsch: {subject: a}\n  set: {department: sales}\n", "01.yaml:2"),
    "bad regex": ("- name: x\n  match:\n    subject: {regex: '(a'}\n  set: {department: sales}\n", "01.yaml:3"),
    "unknown department": ("- name: x\n  match: {subject: a}\n  set: {department: nowhere}\n", "01.yaml:3"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_rules_check_reports_file_and_line(case: str, tmp_path: Path, routed: Daemon) -> None:
    text, where = BROKEN_FILES[case]
    (tmp_path / "01.yaml").write_text(text, encoding="utf-8")
    result = routed.cli("rules", "check", str(tmp_path))
    assert result.returncode == 1
    assert where in result.stderr.decode(), result.stderr.decode()
    assert routed.cli("rules", "check", str(REPO / "rules")).returncode == 0, "the shipped rules are valid"
