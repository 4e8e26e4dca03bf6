"""Composing writes the very bytes the stdlib's `Message.as_bytes()` writes, for every shape we send.

`Outgoing.build()` returns parts whose `as_bytes()` writes plain header lines itself (issue 15);
the reference here is always computed by the stdlib, on the same message or on one built from
the same random state (the multipart boundary is random). Text parts are built without
MIMEText; the tests at the end hold them to what MIMEText makes of the same text.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.message import Message
from email.mime.text import MIMEText
from email.policy import compat32

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mail import compose
from gateway.mail.compose import Outgoing

NAMES = ["Kundtjänst", "Åsa Öberg-Lindström", "Ștefan Țăranu", "Иван Петрович Сидоров", "客户服务中心",
         "Support", "O'Brien, Pat", 'Quote "Q" Person', "", "A" * 120, "Ä" * 90, "长" * 60]
SUBJECTS = ["Hej", "Re: [#12] Fakturan för mars är fel", "Factură greșită — vă rog verificați",
            "Ответ: заказ № 4411 не доставлен", "回复：订单没有收到，请尽快处理", "", "x" * 1000,
            " ".join(["word"] * 80), " ".join(["ord", "är", "långa"] * 60), "Слово " * 70, "字" * 300,
            "[Postdesk] A notice with: colons; semicolons, and commas", "tab\tand\nnewline\rin it"]
TEXTS = ["Hej!\n\nTack.\n", "Bună ziua,\nmulțumim.\n", "Здравствуйте\n" * 40, "你好\n", "", "x" * 2000,
         "From the start\n.\n--\nend", "--===============123==\nlooks like a boundary\n"]


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose, "utcnow", lambda: datetime(2026, 12, 1, 14, 30, 5, tzinfo=UTC))


def _mail(name: str, subject: str, text: str, **extra: object) -> Outgoing:
    fields: dict[str, object] = {"from_addr": "support@example.com", "from_name": name, "to": "kund@example.se",
                                 "subject": subject, "text": text, "domain": "example.com",
                                 "message_id": "<fixed-id@example.com>", **extra}
    return Outgoing(**fields)  # type: ignore[arg-type]


def _written_both_ways(mail: Outgoing, seed: int = 7) -> set[bytes]:
    """Built twice from one random state: once written by us, once by the stdlib; and our message
    object again, its boundary now fixed, by the stdlib generator itself. One element when alike."""
    random.seed(seed)
    ours = mail.build()
    ours_bytes = ours.as_bytes()
    random.seed(seed)
    theirs = Message.as_bytes(mail.build())
    return {ours_bytes, theirs, Message.as_bytes(ours)}


REFS = [f"<ref-{i}.{'r' * (i % 7)}@mail.example.se>" for i in range(35)]
SHAPES = [
    {},
    {"html": "<p>Hej <b>Åsa</b></p>" * 20},
    {"in_reply_to": "<abc@mail.example.se>", "references": REFS},
    {"in_reply_to": "<" + "i" * 950 + "@x>", "references": ["<" + "r" * 950 + "@x>", *REFS[:3]]},
    {"reply_to": "support+t1234@example.com", "automatic": False},
    {"reply_to": "Åsa <asa@example.se>", "auto_submitted": "auto-generated", "loop_token": "tok-" + "7" * 90},
    {"attachments": [("offert.pdf", "application/pdf", b"%PDF-1.4 " * 300)]},
    {"attachments": [("Offert för källaren.pdf", "application/pdf", b"\x00\x01" * 50),
                     ("Фото " * 20 + ".jpg", "image/jpeg", b"\xff\xd8" * 10), ("noext", "", b"")],
     "html": "<p>Ștefan</p>"},
    {"attachments": [("a" * 150 + ".txt", "text/plain", b"hello\n")]},
    {"extra_headers": {"X-Postdesk-Ticket": "1234", "List-Id": "Kundtjänst <support.example.com>",
                       "X-Long": " ".join(["token"] * 40), "X-Exact": "y" * 64, "X-Over": "y" * 65}},
]


@pytest.mark.parametrize("shape", range(len(SHAPES)))
@pytest.mark.parametrize("name", NAMES)
def test_shapes_against_stdlib(shape: int, name: str) -> None:
    for index, subject in enumerate(SUBJECTS):
        mail = _mail(name, subject, TEXTS[index % len(TEXTS)], **SHAPES[shape])
        assert len(_written_both_ways(mail, seed=index)) == 1


@pytest.mark.parametrize("width", range(60, 82))
def test_lines_at_the_folding_width(width: int) -> None:
    """Header lines just under, at and over 78 characters, with and without spaces."""
    subject = ("ab " * width)[: width - len("Subject: ")].strip()
    looped = _mail("N", subject, "t", loop_token="l" * (width - len("X-Postdesk-Loop: ")))
    assert len(_written_both_ways(looped)) == 1
    assert len(_written_both_ways(_mail("N", "s" * (width - len("Subject: ")), "t"))) == 1


def test_boundary_found_in_the_text() -> None:
    """When a body line is the chosen boundary the stdlib counts on; so do we."""
    random.seed(11)
    boundary = BytesGenerator._make_boundary()  # type: ignore[attr-defined]
    text = f"--{boundary}\n--{boundary}.0--\n--{boundary}.1 not alone\n"
    assert len(_written_both_ways(_mail("N", "S", text, html=f"<p>--{boundary}</p>"), seed=11)) == 1


def test_other_policies_and_str_output_unchanged() -> None:
    msg = _mail("Åsa", "Ärende", "Hej\n", html="<p>Hej</p>").build()
    ours = msg.as_bytes(policy=compat32.clone(linesep="\r\n"))
    assert ours == Message.as_bytes(msg, policy=compat32.clone(linesep="\r\n"))
    assert b"\r\n" in ours
    assert msg.as_string() == Message.as_string(msg)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=120), subject=st.text(max_size=400), text=st.text(max_size=300),
       html=st.one_of(st.none(), st.text(min_size=1, max_size=200)),
       refs=st.lists(st.from_regex(r"<[a-z0-9.\-]{1,60}@[a-z.]{1,20}>", fullmatch=True), max_size=30),
       files=st.lists(st.tuples(st.text(min_size=1, max_size=80), st.sampled_from(["application/pdf", "text/plain"]),
                                st.binary(max_size=200)), max_size=2))
def test_any_input_against_stdlib(name: str, subject: str, text: str, html: str | None, refs: list[str],
                                  files: list[tuple[str, str, bytes]]) -> None:
    mail = _mail(name, subject, text, html=html, references=refs, attachments=files,
                 in_reply_to=refs[-1] if refs else None)
    assert len(_written_both_ways(mail)) == 1


def _mimetext(text: str, subtype: str) -> MIMEText:
    """The stdlib's text part: UTF-8, quoted-printable, as compose used to build it."""
    charset = Charset("utf-8")
    charset.body_encoding = QP
    return MIMEText(text, subtype, charset)  # type: ignore[arg-type]


EDGES = ["trailing space \nand tab\t\n", "=3D is not an escape\n", "a" * 75 + "=\n", "b" * 76 + "\n",
         "ä" * 40 + "\n", "line\r\nwith CRLF\r\n", "lone\rCR", "\x00nul\x01ctl", ".\n", "From me\n",
         " leading space", "no newline at the end", "\n\n\n", "emoji 😀 and ﬁ ligature"]


@pytest.mark.parametrize("subtype", ["plain", "html"])
@pytest.mark.parametrize("text", TEXTS + EDGES)
def test_text_part_is_what_mimetext_makes(text: str, subtype: str) -> None:
    ours, theirs = compose._text_part(text, subtype), _mimetext(text, subtype)
    assert ours.items() == theirs.items()
    assert ours.as_bytes() == Message.as_bytes(theirs)
    assert ours.get_payload(decode=True) == theirs.get_payload(decode=True)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=600))
def test_any_text_part_is_what_mimetext_makes(text: str) -> None:
    assert compose._text_part(text, "plain").as_bytes() == Message.as_bytes(_mimetext(text, "plain"))
