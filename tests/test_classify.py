"""Classification (customer, auto-reply, bounce, loop) and bounce parsing.

The corpus tests read the shared public corpora (`/work/shared/corpus`, see its README.md):
every auto-reply/negative sample must get the kind its labels give, every sisimai bounce must be
a bounce whose failed recipients and status codes match go-sisimai's published expectations,
and CPython's MIME edge cases must never make the classifier raise. The unit tests build small
messages by hand for the rules the corpora do not cover.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from email.message import Message
from email.policy import Policy
from pathlib import Path
from typing import Any

import pytest

from gateway.mail.bounces import BounceReport, bounce_hint, normalise_line_endings, parse_bounce
from gateway.mail.classify import Classification, classify

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
POLICIES = {"default": email.policy.default, "compat32": email.policy.compat32}
# go-sisimai writes its own reason codes as "<class>.0.9NN" when a message carries no status;
# they are not in the messages, so only their class (permanent or temporary) can be compared.
PSEUDO_STATUS = re.compile(r"^[245]\.0\.9\d\d$")
# rhost-cox-01 is two messages in mbox form (go-sisimai expects a recipient from each); other
# files may quote an mbox "From " line inside a returned message, so only this one is split.
MBOX_FILES = frozenset({"rhost-cox-01.eml"})
MBOX_FROM = re.compile(rb"(?m)^From \S+ +\w{3} \w{3} +\d{1,2} \d\d:\d\d:\d\d \d{4}\r?$")
BODY_MESSAGE_ID = re.compile(rb"(?im)^[ \t]*Message-ID[ \t]*:\s*<?[^\s@<>]+@")


def corpus_dir(name: str) -> Path:
    path = CORPUS / name
    if not path.is_dir():
        pytest.skip(f"shared corpus folder not found at {path}")
    return path


def read_messages(path: Path, policy: Policy = email.policy.default) -> list[Message]:
    """The messages in one corpus file, read in binary (CRLF, bare CR and 8-bit bytes included)."""
    raw = path.read_bytes()
    starts = [m.start() for m in MBOX_FROM.finditer(raw) if m.start() > 0] if path.name in MBOX_FILES else []
    chunks = [raw[a:b] for a, b in zip([0, *starts], [*starts, len(raw)], strict=True)]
    return [email.message_from_bytes(chunk, policy=policy) for chunk in chunks]


def return_path(msg: Message) -> str | None:
    """The Return-Path header as an envelope sender would look, None when absent."""
    value = msg.get("Return-Path")
    return None if value is None else str(value).strip()


def mail(headers: dict[str, str], body: str = "Hello,\n\nmy order has not arrived.\n\nAnna\n",
         policy: Policy = email.policy.default) -> Message:
    lines = [f"{name}: {value}" for name, value in headers.items()]
    raw = "\r\n".join([*lines, "", *body.split("\n")]).encode("utf-8")
    return email.message_from_bytes(raw, policy=policy)


CUSTOMER = {
    "From": "Anna Berg <anna.berg@kund.example.se>",
    "To": "support@telenta.example",
    "Subject": "Order 4711 has not arrived",
    "Date": "Mon, 02 Jun 2025 09:12:00 +0200",
    "Message-ID": "<a1b2c3@kund.example.se>",
}


# -- autoreply corpus ---------------------------------------------------------------------------


def expected_kinds(entry: dict[str, Any]) -> set[str]:
    """Kinds that agree with the corpus label and the upstream assertion of one file."""
    category = entry["annotation_category"]
    upstream = entry.get("upstream_expectation") or {}
    if category.startswith("ambiguous"):
        # rb-issue-368-bug: a postmaster's "email bounce notification" (mailbox full) with
        # Auto-Submitted: auto-replied, filed as not-a-bounce upstream; either kind keeps it off
        # the ticket queue.
        kinds = {"bounce", "auto_reply"}
    elif category.startswith(("auto-reply", "automated challenge/response")):
        kinds = {"auto_reply"}
    elif category.startswith("bounce"):
        kinds = {"bounce"}
    else:
        kinds = {"customer"}
    if upstream.get("reason") == "vacation":
        kinds &= {"auto_reply"}
    if "is_bounce" in upstream:
        kinds = kinds & {"bounce"} if upstream["is_bounce"] else kinds - {"bounce"}
    if upstream.get("is_auto_reply") is False:
        kinds -= {"auto_reply"}
    assert kinds, f"corpus labels contradict each other: {entry}"
    return kinds


@pytest.mark.parametrize("policy", POLICIES)
def test_autoreply_corpus_agrees_with_labels(policy: str) -> None:
    folder = corpus_dir("autoreply")
    files = json.loads((folder / "expected.json").read_text("utf-8"))["files"]
    runs = disagreements = 0
    report: list[str] = []
    for name, entry in files.items():
        wanted = expected_kinds(entry)
        (msg,) = read_messages(folder / name, POLICIES[policy])
        # Once without an envelope (IMAP), once with the Return-Path as the SMTP envelope.
        for mail_from in (None, return_path(msg)):
            result = classify(msg, mail_from=mail_from)
            runs += 1
            if result.kind not in wanted:
                disagreements += 1
                report.append(f"{name} (mail_from={mail_from!r}): {result.kind} {result.reasons}, "
                              f"want {sorted(wanted)}")
    print(f"\nautoreply corpus [{policy}]: {runs - disagreements}/{runs} classifications agree")
    assert not report, "disagreements:\n" + "\n".join(report)


# -- sisimai bounce corpus -----------------------------------------------------------------------


def sisimai_cases() -> list[tuple[str, list[dict[str, Any]]]]:
    folder = corpus_dir("sisimai_bounces")
    files = json.loads((folder / "expected.json").read_text("utf-8"))["files"]
    return [(name, entry["expected_facts"]) for name, entry in sorted(files.items())]


def sisimai_results(policy: Policy) -> list[tuple[str, list[dict[str, Any]], list[Classification]]]:
    folder = corpus_dir("sisimai_bounces")
    results = []
    for name, facts in sisimai_cases():
        messages = read_messages(folder / name, policy)
        results.append((name, facts, [classify(m, mail_from=None) for m in messages]))
    return results


@pytest.mark.parametrize("policy", POLICIES)
def test_sisimai_every_message_is_a_bounce(policy: str) -> None:
    wrong = [
        f"{name}: {c.kind} {c.reasons}"
        for name, _, classes in sisimai_results(POLICIES[policy])
        for c in classes
        if c.kind != "bounce" or c.bounce is None
    ]
    assert not wrong, "not classified as bounce:\n" + "\n".join(wrong)


@pytest.mark.parametrize("policy", POLICIES)
def test_sisimai_recipients_status_and_hard_soft(policy: str) -> None:
    problems: list[str] = []
    real = real_ok = in_diag = pseudo = pseudo_ok = hard_ok = compared = code_ok = codes = 0
    for name, facts, classes in sisimai_results(POLICIES[policy]):
        got = [r for c in classes if c.bounce for r in c.bounce.recipients]
        if len(got) != len(facts):
            problems.append(f"{name}: {len(got)} failed recipients, expected {len(facts)}: {got}")
            continue
        for fact, recipient in zip(facts, got, strict=True):
            want = fact["deliverystatus"].lower()
            if PSEUDO_STATUS.match(want):
                pseudo += 1
                pseudo_ok += recipient.status[:1] == want[:1]
            elif want:
                real += 1
                if recipient.status.lower() == want:
                    real_ok += 1
                elif want in recipient.diagnostic.lower():
                    # The remote server's code is in the diagnostic; the Status field says another.
                    in_diag += 1
                    print(f"\n{name}: {want} found in the diagnostic; Status field gave {recipient.status}")
                else:
                    problems.append(f"{name}: status {recipient.status!r}, expected {want!r} ({recipient})")
            if fact["replycode"]:
                codes += 1
                code_ok += recipient.smtp_code == fact["replycode"]
            compared += 1
            hard_ok += recipient.hard == fact["hardbounce"]
            if recipient.hard != fact["hardbounce"]:
                print(f"\nhard/soft differs: {name} {recipient.address} {recipient.status} "
                      f"ours={'hard' if recipient.hard else 'soft'} sisimai reason={fact['reason']}")
    print(f"\nsisimai [{policy}]: real status {real_ok}/{real} exact, {in_diag} found in the diagnostic; "
          f"pseudo-status class {pseudo_ok}/{pseudo}; SMTP code {code_ok}/{codes}; "
          f"hard/soft {hard_ok}/{compared} = {hard_ok / max(compared, 1):.1%}")
    assert not problems, "recipient/status disagreements:\n" + "\n".join(problems)
    assert pseudo_ok >= 0.9 * pseudo, f"permanent/temporary class agrees for only {pseudo_ok}/{pseudo}"
    assert hard_ok >= 0.9 * compared, f"hard/soft agrees for only {hard_ok}/{compared}"


def test_sisimai_original_message_id_found_when_present() -> None:
    folder = corpus_dir("sisimai_bounces")
    missing: list[str] = []
    checked = 0
    for name, _ in sisimai_cases():
        raw = normalise_line_endings((folder / name).read_bytes())
        body = raw.split(b"\n\n", 1)[1] if b"\n\n" in raw else b""
        bounce = parse_bounce(read_messages(folder / name)[0])
        assert bounce is not None, name
        if not BODY_MESSAGE_ID.search(body):
            continue
        checked += 1
        found = bounce.original_message_id
        if not found or not re.fullmatch(r"<[^<>\s]+@[^<>\s]+>", found) or found[1:-1].encode() not in raw:
            missing.append(f"{name}: {found!r}")
    print(f"\noriginal Message-ID found in {checked - len(missing)}/{checked} bounces that quote one")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("variant", ["lhost-exim-01.eml", "lhost-postfix-01.eml"])
def test_sisimai_line_ending_variants_read_alike(variant: str) -> None:
    folder = corpus_dir("sisimai_bounces") / "line_endings"
    results = []
    for prefix in ("dos", "mac"):
        raw = (folder / f"{prefix}-{variant}").read_bytes()
        for data in (raw, normalise_line_endings(raw)):
            result = classify(email.message_from_bytes(data, policy=email.policy.default), mail_from=None)
            results.append((result.kind, result.bounce))
    assert all(r == results[0] for r in results), results
    assert normalise_line_endings(b"a\rb\r\nc\n") == b"a\nb\nc\n"


# -- the bounce pre-check ------------------------------------------------------------------------


def test_every_corpus_bounce_enters_the_bounce_reader() -> None:
    # The pre-check sees headers and structure only; every bounce the corpora hold must pass it.
    missed = []
    for policy in POLICIES.values():
        for name, _ in sisimai_cases():
            for msg in read_messages(corpus_dir("sisimai_bounces") / name, policy):
                if not bounce_hint(msg):
                    missed.append(name)
        entries = json.loads((corpus_dir("autoreply") / "expected.json").read_text("utf-8"))["files"]
        for name, entry in entries.items():
            (msg,) = read_messages(corpus_dir("autoreply") / name, policy)
            if "bounce" in expected_kinds(entry) and not bounce_hint(msg):
                missed.append(name)
    assert not missed, missed


def person_mails() -> list[tuple[str, Message]]:
    """A person's mail around every reply body of the shared corpus, and a few written here."""
    bodies = [(p.name, p.read_text("utf-8", "replace")) for folder in ("crisp_reply", "email_reply_parser")
              for p in sorted(corpus_dir(folder).rglob("*.txt"))]
    subjects = ["Re: Order 4711", "Delivery of my parcel", "Fwd: Undelivered Mail Returned to Sender", ""]
    written = [(f"subject {s!r}", mail({**CUSTOMER, "Subject": s}, QMAIL_BOUNCE)) for s in subjects]
    return [(name, mail({**CUSTOMER, "Subject": "Re: Order 4711"}, body)) for name, body in bodies] + written


def test_a_persons_mail_never_enters_the_bounce_reader() -> None:
    mails = person_mails()
    assert len(mails) > 100
    entered = [(name, bounce_hint(msg)) for name, msg in mails if bounce_hint(msg)]
    assert not entered, entered
    # A person's mail with a mail attached is still a person's mail (the corpus's own example).
    (attached,) = read_messages(corpus_dir("autoreply") / "sisimai" / "is-not-bounce-02.eml")
    assert bounce_hint(attached) == ""


def test_bounce_hint_names_what_it_saw() -> None:
    daemon = mail({"From": "MAILER-DAEMON@mx.kund.example.se", "Subject": "Hello"})
    assert bounce_hint(daemon) == "sender is MAILER-DAEMON"
    assert bounce_hint(mail({**CUSTOMER, "Subject": "Undeliverable: Order 4711"})).startswith("subject")
    assert bounce_hint(mail({**CUSTOMER, "X-Failed-Recipients": "a@b.example"})) == "x-failed-recipients header"


# -- CPython MIME edge cases ---------------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
def test_cpython_corpus_never_raises(policy: str) -> None:
    folder = corpus_dir("cpython_email") / "data"
    kinds: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        raw = path.read_bytes()
        # Whole files, and truncated ones: a crash must not hide in a half-received message.
        for data in (raw, raw[: len(raw) // 2], raw[: len(raw) // 3] + b"\n--\n\xff\xfe"):
            try:
                msg = email.message_from_bytes(data, policy=POLICIES[policy])
            except Exception:  # The stdlib parser itself fails on some cuts (RFC 2231 params).
                continue
            for mail_from in (None, "", "<>", "someone@example.org"):
                result = classify(msg, mail_from=mail_from, own_domains=frozenset({"postdesk.example"}))
                assert result.kind in ("customer", "auto_reply", "bounce", "loop")
                assert not any(r.startswith("classification failed") for r in result.reasons), (path.name, result)
            parse_bounce(msg)
        kinds[path.name] = classify(email.message_from_bytes(raw, policy=POLICIES[policy]), mail_from=None).kind
    # msg_16 is a real Exchange-style DSN (multipart/report delivery-status).
    assert kinds["msg_16.txt"] == "bounce"


# -- hand-written messages -----------------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
def test_customer_mail_is_customer(policy: str) -> None:
    result = classify(mail(CUSTOMER, policy=POLICIES[policy]), mail_from="anna.berg@kund.example.se")
    assert result == Classification("customer", [], None)


def test_customer_with_auto_submitted_no_is_customer() -> None:
    msg = mail({**CUSTOMER, "Auto-Submitted": "no"})
    assert classify(msg, mail_from="anna.berg@kund.example.se").kind == "customer"
    assert classify(msg, mail_from=None).kind == "customer"


def test_loop_header_is_loop() -> None:
    msg = mail({**CUSTOMER, "X-Postdesk-Loop": "telenta-9f2c"})
    assert classify(msg, mail_from="anna.berg@kund.example.se").kind == "loop"
    assert classify(msg, mail_from=None, loop_token="telenta-9f2c").kind == "loop"
    # With a token configured, a loop header carrying another value is not ours.
    assert classify(msg, mail_from=None, loop_token="other-token").kind == "customer"
    renamed = mail({**CUSTOMER, "X-Helpdesk-Loop": "yes"})
    assert classify(renamed, mail_from=None, loop_header="X-Helpdesk-Loop").kind == "loop"


def test_own_message_id_domain_is_loop() -> None:
    msg = mail({**CUSTOMER, "Message-ID": "<ticket-4711.3@Postdesk.Telenta.example>"})
    result = classify(msg, mail_from=None, own_domains=frozenset({"postdesk.telenta.example"}))
    assert result.kind == "loop"
    assert result.reasons == ["Message-ID from our domain postdesk.telenta.example"]
    other = classify(mail(CUSTOMER), mail_from=None, own_domains=frozenset({"postdesk.telenta.example"}))
    assert other.kind == "customer"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Auto-Submitted", "auto-replied"),
        ("Auto-Submitted", "auto-generated (vacation)"),
        ("Precedence", "bulk"),
        ("Precedence", "junk"),
        ("Precedence", "list"),
        ("Precedence", "auto_reply"),
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "Thank you"),
        ("X-AutoReply-From", "anna.berg@kund.example.se"),
        ("X-Mail-Autoreply", "anna.berg@kund.example.se"),
        ("X-MS-Exchange-Generated-Message-Source", "Mailbox Rules Agent"),
        ("X-Loop", "support@helpdesk.kund.example.se"),
        ("X-Autogenerated", "Reply"),
        ("X-FC-MachineGenerated", "true"),
        ("X-POST-MessageClass", "9; Autoresponder"),
        ("Delivered-To", "Autoresponder"),
        ("List-Id", "Customers <customers.kund.example.se>"),
        ("List-Unsubscribe", "<mailto:leave@kund.example.se>"),
    ],
)
def test_auto_reply_headers(name: str, value: str) -> None:
    # X-Auto-Response-Suppress and X-MS-Exchange-Inbox-Rules-Loop used to be in this list:
    # Outlook and Exchange set them on people's mail too (see the tests below).
    result = classify(mail({**CUSTOMER, name: value}), mail_from="anna.berg@kund.example.se")
    assert result.kind == "auto_reply", result
    assert any(name.lower() in reason.lower() for reason in result.reasons), result.reasons


@pytest.mark.parametrize(
    "subject",
    [
        "Automatiskt svar: Order 4711 has not arrived",  # Swedish Outlook
        "Autosvar: Order 4711",  # Swedish
        "Automatisk svar: Order 4711",  # Norwegian/Danish
        "Răspuns automat: Comanda 4711",  # Romanian Outlook
        "=?UTF-8?Q?R=C4=83spuns_automat=3A_Comanda_4711?=",  # the same, RFC 2047 encoded
        "Automatic reply: Order 4711 has not arrived",
        "Out of Office: Order 4711",
        "Out of Office AutoReply: Order 4711",
        "Abwesenheitsnotiz: Bestellung 4711",
        "Anna Berg is out of the office",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    result = classify(mail({**CUSTOMER, "Subject": subject}), mail_from="anna.berg@kund.example.se")
    assert result.kind == "auto_reply", result


@pytest.mark.parametrize(
    "subject",
    ["Out of office hours support?", "Delivery failure of my parcel", "Returned item 4711", "Re: Automatic renewal"],
)
def test_customer_subjects_that_only_look_automatic(subject: str) -> None:
    result = classify(mail({**CUSTOMER, "Subject": subject}), mail_from="anna.berg@kund.example.se")
    assert result.kind == "customer", result


def test_customer_forwarding_a_bounce_is_customer() -> None:
    body = (
        "Hi, my mail to you bounced, see below. Can you help?\n\n"
        "---------- Forwarded message ---------\n"
        "From: Mail Delivery System <MAILER-DAEMON@mx.kund.example.se>\n"
        "Subject: Undelivered Mail Returned to Sender\n\n"
        "This is the mail system at host mx.kund.example.se.\n\n"
        "<order@telenta.example>: host mx.telenta.example said: 550 5.1.1 User unknown\n"
    )
    msg = mail({**CUSTOMER, "Subject": "Fwd: Undelivered Mail Returned to Sender"}, body)
    assert classify(msg, mail_from="anna.berg@kund.example.se").kind == "customer"


def test_null_return_path() -> None:
    plain = mail(CUSTOMER)
    assert classify(plain, mail_from="<>").kind == "bounce"
    assert classify(plain, mail_from="").kind == "bounce"
    # None means "unknown", not "null".
    assert classify(plain, mail_from=None).kind == "customer"
    # RFC 3834 asks auto-responders to use the null sender: a null sender with auto-reply marks
    # is an auto-reply.
    vacation = mail({**CUSTOMER, "Auto-Submitted": "auto-replied", "Subject": "Away until May 5"})
    result = classify(vacation, mail_from="<>")
    assert result.kind == "auto_reply"
    assert result.reasons == ["Auto-Submitted: auto-replied"]


QMAIL_BOUNCE = (
    "Hi. This is the qmail-send program at mx.kund.example.se.\n"
    "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
    "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
    "<anna.berg@kund.example.se>:\n"
    "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
    "--- Below this line is a copy of the message.\n\n"
    "Return-Path: <support@telenta.example>\n"
    "Message-ID: <ticket-4711.1@postdesk.telenta.example>\n"
    "Subject: [#4711] We received your request\n\n"
    "Thank you.\n"
)


def test_mailer_daemon_sender_is_bounce_and_parsed() -> None:
    headers = {"From": "MAILER-DAEMON@mx.kund.example.se", "To": "support@telenta.example",
               "Subject": "failure notice", "Auto-Submitted": "auto-replied"}
    result = classify(mail(headers, QMAIL_BOUNCE), mail_from=None)
    assert result.kind == "bounce", result
    assert "sender is MAILER-DAEMON" in result.reasons
    assert result.bounce == BounceReport(
        recipients=result.bounce.recipients, original_message_id="<ticket-4711.1@postdesk.telenta.example>",
        report_type="heuristic",
    )
    (recipient,) = result.bounce.recipients
    assert (recipient.address, recipient.status, recipient.hard) == ("anna.berg@kund.example.se", "5.1.1", True)


def test_dsn_with_delivered_and_delayed_recipients() -> None:
    raw = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.telenta.example>\r\n"
        b"To: support@telenta.example\r\n"
        b"Subject: Delivery Status Notification\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nSee the report.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.telenta.example\r\n\r\n"
        b"Final-Recipient: rfc822; ok@kund.example.se\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n"
        b"Final-Recipient: rfc822; SLOW@Kund.example.se\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n"
        b"Final-Recipient: rfc822; full@kund.example.se\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        b"Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <n-1@postdesk.telenta.example>\r\n\r\n--B--\r\n"
    )
    for policy in POLICIES.values():
        bounce = parse_bounce(email.message_from_bytes(raw, policy=policy))
        assert bounce is not None and bounce.report_type == "delivery-status"
        assert bounce.original_message_id == "<n-1@postdesk.telenta.example>"
        assert [(r.address, r.status, r.smtp_code, r.hard) for r in bounce.recipients] == [
            ("slow@kund.example.se", "4.4.1", "", False),
            ("full@kund.example.se", "5.2.2", "552", False),
        ]


@pytest.mark.parametrize("policy", POLICIES)
def test_malformed_headers_do_not_raise(policy: str) -> None:
    raw = (
        b"From: =?utf-8?B?broken?= <>\r\n"
        b"Subject: =?x-unknown?Q?caf=E9?= \xe5\xe4\xf6 \xff\r\n"
        b"Message-ID: <no-domain>\r\n"
        b"Auto-Submitted:\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=\r\n"
        b"Return-Path: <MAILER-DAEMON@\xff>\r\n"
        b"this line is no header\r\n\r\n"
        b"\xff\xfe body \x00 with NUL\r\n"
    )
    msg = email.message_from_bytes(raw, policy=POLICIES[policy])
    for mail_from in (None, "", "<>", "x@y"):
        result = classify(msg, mail_from=mail_from, own_domains=frozenset({"postdesk.example"}), loop_token="t")
        assert result.kind in ("customer", "auto_reply", "bounce", "loop")
        assert not any(r.startswith("classification failed") for r in result.reasons), result
    empty = email.message_from_bytes(b"", policy=POLICIES[policy])
    assert classify(empty, mail_from=None).kind == "customer"


@pytest.mark.timeout(30)
def test_hostile_sizes_stay_linear() -> None:
    # Long runs without separators are where backtracking patterns go quadratic or worse.
    body = "a" * 400_000 + "\n" + "x@" * 100_000 + "\n" + "5." * 100_000 + "\n" + ("-" * 70 + "\n") * 5_000
    headers = {"From": "MAILER-DAEMON@mx.example.org", "To": "support@telenta.example",
               "Subject": "Undelivered Mail Returned to Sender " + "a" * 50_000}
    result = classify(mail(headers, body), mail_from="<>")
    assert result.kind == "bounce"


@pytest.mark.parametrize("value", ["All", "OOF, AutoReply", "DR, RN, NRN, OOF, AutoReply"])
def test_auto_response_suppress_is_a_person_we_must_not_answer(value: str) -> None:
    result = classify(mail({**CUSTOMER, "X-Auto-Response-Suppress": value}), mail_from="anna.berg@kund.example.se")
    assert result.kind == "customer" and result.reasons == []
    assert result.may_auto_answer is False
    assert "X-Auto-Response-Suppress" in result.no_answer_reasons[0]


def test_exchange_inbox_rules_loop_alone_is_a_person() -> None:
    headers = {**CUSTOMER, "X-MS-Exchange-Inbox-Rules-Loop": "anna.berg@kund.example.se"}
    result = classify(mail(headers), mail_from="anna.berg@kund.example.se")
    assert result.kind == "customer" and result.may_auto_answer is True


def test_automatic_mail_may_never_be_answered_automatically() -> None:
    result = classify(mail({**CUSTOMER, "X-Loop": "tickets@other-helpdesk.example"}), mail_from="x@y.example")
    assert result.kind == "auto_reply" and any("loop sign" in r for r in result.reasons)
    assert result.may_auto_answer is False
