"""Fuzzing MIME structure and headers through the real stages: no message escapes unhandled.

Hypothesis builds messages the way broken and hostile senders do: nested multiparts with wrong
or missing boundaries, message/rfc822 inside, unknown charsets and transfer encodings, encoded
words, control characters and NULs in every header, over-long ids and names, attachments with
strange names. Each is queued in a real SQLite database and taken through the processor's own
batch (parse, classify, check, strip, prove, thread, route, apply). Every one must end `done` or
in quarantine with a reason a person can act on (an unusable sender), never with an error from
inside the code, and no exception may leave the batch; on SQLite and on PostgreSQL alike. The
example count is bounded so the suite stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from gateway.config import load_config
from gateway.daemon import build_pipeline
from gateway.db.engine import make_engine, upgrade
from gateway.intake.writer import enqueue_inbound
from gateway.process import Processor
from tests.harness import REPO, Database

# Quarantine reasons that are about the message, not about our code.
ACCEPTABLE = ("ValueError: From address", "ValueError: no sender")

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_WORDS = st.one_of(
    _TEXT,
    st.sampled_from(["=?utf-8?q?L=C3=A5s?=", "=?iso-8859-1?b?5OT2?=", "=?bogus?q?x?=", "=?utf-8?b?!!!?=",
                     "x" * 1200, "\x00", "\x0b", "\x7f", "é" * 300, "<a@b>" * 50]),
)
_CHARSETS = st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "x-unknown", "bogus-charset", "", "utf-7"])
_ENCODINGS = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "garbage", ""])
_TYPES = st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png", "application/ms-tnef",
                          "message/delivery-status", "text/calendar", "bogus", "text/plain; format=flowed"])


def _header_value() -> st.SearchStrategy[str]:
    return st.lists(_WORDS, min_size=0, max_size=4).map(" ".join)


@st.composite
def _leaf(draw: st.DrawFn) -> bytes:
    ctype, charset, encoding = draw(_TYPES), draw(_CHARSETS), draw(_ENCODINGS)
    head = f"Content-Type: {ctype}" + (f'; charset="{charset}"' if charset else "") + "\n"
    if encoding:
        head += f"Content-Transfer-Encoding: {encoding}\n"
    if draw(st.booleans()):
        head += f'Content-Disposition: attachment; filename="{draw(_header_value())}"\n'
    if draw(st.booleans()):
        head += f"Content-ID: <{draw(_header_value())}>\n"
    body = draw(st.one_of(st.binary(max_size=300), _TEXT.map(lambda t: t.encode("utf-8")),
                          st.sampled_from([b"<div>" * 200, b"=ZZ=\n=", b"!!!!", b"\x00\x00\xff"])))
    return head.encode("utf-8", "surrogateescape") + b"\n" + body


def _multipart(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        boundary = draw(st.sampled_from(["b1", "=_x", "", "a" * 80, "b1 b2"]))
        parts = draw(st.lists(children, min_size=0, max_size=4))
        sub = draw(st.sampled_from(["mixed", "alternative", "related", "report", "signed"]))
        head = f'Content-Type: multipart/{sub}; boundary="{boundary}"\n\n'.encode()
        closing = draw(st.sampled_from([f"--{boundary}--\n", "", f"--{boundary}\n"])).encode()
        return head + b"".join(f"--{boundary}\n".encode() + part + b"\n" for part in parts) + closing
    return build()


def _nested(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(_multipart(children), children.map(lambda inner: b"Content-Type: message/rfc822\n\n" + inner))


_BODY = st.recursive(_leaf(), _nested, max_leaves=6)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    sender = draw(st.sampled_from(["anna@kund.example", "", "mailer-daemon@relay.example", "bo@kund.example"]))
    from_header = draw(st.one_of(
        st.just(sender), _header_value(),
        _header_value().map(lambda name: f"{name} <{sender or 'x@kund.example'}>"),
        st.sampled_from(["<ctrl\x0bchar@kund.example>", "<n\x00l@kund.example>", "a" * 400 + "@kund.example"]),
    ))
    headers = [("From", from_header), ("To", "support@telenta.example")]
    for name in ("Subject", "Message-ID", "In-Reply-To", "References", "Date", "Auto-Submitted", "Cc", "Reply-To"):
        if draw(st.booleans()):
            headers.append((name, draw(_header_value())))
    head = "".join(f"{name}: {value}\n" for name, value in headers).encode("utf-8", "surrogateescape")
    return sender, head + b"MIME-Version: 1.0\n" + draw(_BODY)


@pytest.fixture(scope="module")
def processor(backend: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    folder = tmp_path_factory.mktemp("fuzz")
    environ = {"POSTDESK_DATABASE__URL": backend.url, "POSTDESK_SECRET": "fuzz-secret",
               "POSTDESK_STORE_DIR": str(folder / "store"), "POSTDESK_ADMIN_ADDRESS": "admin@telenta-it.example"}
    previous = Path.cwd()
    os.chdir(REPO)  # templates and rules are found relative to the project, as the daemon finds them
    config = load_config(REPO / "config" / "postdesk.yaml", environ=environ)
    engine = make_engine(config.database.url)
    upgrade(engine)
    yield Processor(engine, build_pipeline(config), "fuzz")
    engine.dispose()
    os.chdir(previous)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(message=messages())
def test_fuzzed_mime_and_headers_pass_the_real_stages(processor: Processor, message: tuple[str, bytes]) -> None:
    sender, raw = message
    raw = raw.replace(b"\n", b"\r\n")
    [inbound_id] = enqueue_inbound(processor.engine, [{"source": "smtp", "mail_from": sender or "<>",
                                                      "rcpt_to": "support@telenta.example", "raw": raw}])
    while processor.run_batch():  # must not raise: a failure of one item is that item's alone
        pass
    with processor.engine.connect() as conn:
        state, note = conn.execute(text("SELECT state, note FROM inbound WHERE id = :i"), {"i": inbound_id}).one()
    assert state in ("done", "quarantined"), (state, note)
    if state == "quarantined":
        assert any(reason in note for reason in ACCEPTABLE), note
