"""Reading real mail right: senders, headers, charsets, bodies and attachments, on .eml files.

The fixtures in tests/fixtures/mail are written in the shapes that real software sends (MTAs
that add several From headers, list managers, Outlook's encoded names, old clients'
uuencode, mislabelled 8-bit mail); each test reads one through `postdesk route --mail-only`'s
reader or the parser and checks what a person would see.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.mail.charsets import codec, decode
from gateway.mail.headers import decode_value, repair
from gateway.mail.parse import parse
from gateway.mail.reading import read_mail

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mail"
REPO = Path(__file__).resolve().parents[1]


def _read(name: str, envelope: str | None = None) -> dict:
    return read_mail((FIXTURES / name).read_bytes(), envelope=envelope)


# -- a sender, always ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "address", "display", "source"), [
    ("sender_several_from.eml", "Karin.Lind@Kund.example", "Karin Lind", "From"),
    ("sender_null_first.eml", "ove.berg@kund.example", "Ove Berg", "From"),
    ("sender_encoded_comma.eml", "Bernd.Mueller@Kunde.example", "Müller, Bernd", "From"),
    ("sender_reply_to_only.eml", "lena.ek@kund.example", "Lena Ek", "Reply-To"),
    # mutt on a host of a private network: a domain of one label is still the person's address.
    ("sender_dotless_domain.eml", "nils.ahl@kontoret", "Nils Ahl", "From"),
])
def test_sender_is_recovered_as_written(name: str, address: str, display: str, source: str) -> None:
    report = _read(name)
    assert report["sender"] == {"address": address, "name": display, "from": source}
    assert report["kind"] == "customer" and report["quarantine"] == ""
    assert parse((FIXTURES / name).read_bytes()).from_addr == address.lower(), "compared case-insensitively"


def test_envelope_sender_is_the_last_resort() -> None:
    raw = b"To: support@telenta.example\r\nSubject: no from at all\r\n\r\nHello\r\n"
    assert read_mail(raw)["quarantine"].startswith("no sender")
    report = read_mail(raw, envelope="Anna@Kund.example")
    assert report["sender"] == {"address": "Anna@Kund.example", "name": "", "from": "envelope"}
    assert report["quarantine"] == ""


def test_a_dotted_address_wins_over_a_one_label_domain() -> None:
    raw = (FIXTURES / "sender_dotless_domain.eml").read_bytes()
    report = read_mail(raw, envelope="nils@kund.example")
    assert report["sender"] == {"address": "nils@kund.example", "name": "", "from": "envelope"}
    assert read_mail(b"From: Nils <nils@kontoret>\r\nReply-To: <nils@kund.example>\r\n\r\nHej\r\n")["sender"][
        "address"] == "nils@kund.example"


def _from_header(header: bytes) -> bytes:
    return b"From: " + header + b"\r\nTo: support@telenta.example\r\nSubject: x\r\n\r\nx\r\n"


@pytest.mark.parametrize(("header", "address"), [
    # Some mailers encode the whole From value; a reply to the encoded form would bounce.
    (b"=?utf-8?Q?agent?=@telenta.example", "agent@telenta.example"),
    (b"Eva <=?UTF-8?B?ZXZhLmxpbmQ=?=@kund.example>", "eva.lind@kund.example"),
    (b"=?utf-8?Q?attacker?Q?agent?=@victim.example", "attacker?Q?agent@victim.example"),
    # What would decode to another mailbox (a second @, a space, a bracket) stays as written.
    (b"=?utf-8?Q?ceo=40bank.example?=@evil.example", "=?utf-8?Q?ceo=40bank.example?=@evil.example"),
    (b"=?utf-8?Q?a_b?=@evil.example", "=?utf-8?Q?a_b?=@evil.example"),
    (b"=?utf-8?Q?x=3Cceo?=@evil.example", "=?utf-8?Q?x=3Cceo?=@evil.example"),
    # Broken encoded-words: an unknown charset, bad base64, bytes that are no UTF-8.
    (b"=?x-unknown?Q?anna?=@kund.example", "=?x-unknown?Q?anna?=@kund.example"),
    (b"=?utf-8?B?QQQQQ?=@kund.example", "=?utf-8?B?QQQQQ?=@kund.example"),
    (b"=?utf-8?Q?anna=FF?=@kund.example", "=?utf-8?Q?anna=FF?=@kund.example"),
])
def test_an_encoded_word_inside_an_address_decodes_only_to_a_plain_local_part(header: bytes, address: str) -> None:
    raw = _from_header(header)
    assert read_mail(raw)["sender"]["address"] == address
    assert parse(raw).from_addr == address.lower()


def test_spaces_inside_angle_brackets_are_the_local_part_of_that_address() -> None:
    # A spam tool's From: the brackets say where the address is, so the spaces are its local part's.
    raw = _from_header(b'"your secret past" <power quadrant system@kund.example>')
    report = read_mail(raw)
    assert report["sender"] == {"address": '"power quadrant system"@kund.example', "name": "your secret past",
                                "from": "From"}
    assert report["quarantine"] == ""
    # Without brackets a bare word before an address is a name, as before.
    assert read_mail(raw.replace(b'"your secret past" <power quadrant system@kund.example>',
                                 b"Test test@kund.example"))["sender"]["address"] == "test@kund.example"


@pytest.mark.parametrize(("header", "address"), [
    # A local part in quotes may hold spaces (RFC 5322 3.4.1): that is the sender.
    (b'"Lottery Office transfer"@kund.example', '"Lottery Office transfer"@kund.example'),
    (b'Anna <"anna svensson"@kund.example>', '"anna svensson"@kund.example'),
    # Not one address: a control character inside the quotes, a bare quote.
    (b'"anna\x0bsvensson"@kund.example', ""),
    (b'"anna"svensson"@kund.example', ""),
])
def test_a_quoted_local_part_with_spaces_is_an_address(header: bytes, address: str) -> None:
    from gateway.validate import address_problem

    raw = _from_header(header)
    assert read_mail(raw)["sender"]["address"] == address
    if address:
        assert address_problem(address) is None, "it may reach the store and the relay"


def test_a_sender_without_a_display_name_signs_with_the_name_in_the_address() -> None:
    raw = b"From: anna.svensson@kund.example\r\nTo: support@telenta.example\r\nSubject: x\r\n\r\n" \
          b"Kan ni ringa mig i morgon?\r\nAnna\r\n"
    report = read_mail(raw)
    assert (report["new_text"], report["signature"]) == ("Kan ni ringa mig i morgon?", "Anna")
    assert parse(raw).signs_as == "anna svensson"
    assert parse(raw.replace(b"anna.svensson@", b"order4711@")).signs_as == "", "no name in that address"


def test_mailer_daemon_without_domain_is_a_bounce_sender() -> None:
    report = _read("sender_mailer_daemon.eml", envelope="<>")
    assert report["sender"]["address"] == "MAILER-DAEMON"
    assert report["kind"] == "bounce" and report["may_auto_answer"] is False


# -- headers as real software writes them ------------------------------------------------------

def test_lost_indentation_and_junk_before_the_first_header() -> None:
    report = _read("headers_lost_indent.eml")
    assert report["subject"] == "Servicebesök på förskolan Solstrålen, dörren vid entrén och grinden mot parkeringen"
    assert report["sender"]["address"] == "per.holm@kund.example", "headers after the broken one are kept"
    assert report["new_text"] == "Kan ni komma på torsdag?"


def test_body_without_its_blank_line_is_not_folded_into_a_header() -> None:
    raw = b"From: a@kund.example\r\nSubject: Hej\r\nDet brinner inte.\r\n"
    mail = parse(raw)
    assert mail.subject == "Hej" and mail.text_plain.strip() == "Det brinner inte."
    assert repair(b"From: a@b.example\r\n\r\nbody") == b"From: a@b.example\r\n\r\nbody"


def test_raw_eight_bit_headers_are_detected_not_guessed() -> None:
    report = _read("headers_raw_8bit.eml")
    assert report["sender"]["name"] == "Сергей Иванов"
    assert report["subject"] == "Не работает сигнализация на складе"
    assert report["body"].startswith("Добрый день! Сигнализация на складе")


def test_one_charset_table_for_headers_and_bodies() -> None:
    mail = parse((FIXTURES / "headers_charset_aliases.eml").read_bytes())
    assert mail.sender.name == "김민수"
    assert mail.subject == "こんにちはand a split word å with spaces inside"
    assert mail.text_plain.strip() == "안녕하세요, 경보가 울립니다."
    names = [decode_value(v) for v in ("=?gb2312?B?1cXI/Q==?=", "=?shift_jis?B?jlKTYw==?=", "=?utf8?q?Ren=C3=A9?=",
                                       "=?unicode-1-1-utf-7?Q?Bj+APY-rn?=")]
    assert names == ["张三", "山田", "René", "Björn"]
    assert [codec(c) for c in ("gb2312", "ISO-2022-JP", "Shift_JIS", "ks_c_5601-1987", "utf8")] == [
        "gb18030", "cp50220", "cp932", "cp949", "utf-8"]
    # A character only the superset has, sent under the subset's name.
    assert decode("髙".encode("cp932"), "shift_jis") == "髙"


def test_iso_2022_jp_from_windows_keeps_its_extra_characters() -> None:
    # Outlook writes cp932's circled numbers, Roman numerals and IBM kanji into ISO-2022-JP mail
    # (Microsoft's CP50220); Python's ISO-2022-JP codecs reject them.
    report = _read("body_iso2022jp_windows.eml")
    assert report["sender"] == {"address": "takahashi@kund.example", "name": "髙橋", "from": "From"}
    assert report["subject"] == "Ⅲ号機の警報"
    assert report["body"] == "①番のセンサーが故障しました。\nよろしくお願いします。"
    # Text the standard codec reads is read by it: JIS X 0212 and half-width katakana too.
    assert decode(b"\x1b$(D+!\x1b(B\x1b(I1\x1b(B", "iso-2022-jp") == "áｱ"
    # 8-bit Japanese under the label (a raw Shift_JIS subject beside an ISO-2022-JP body; an
    # encoded-word that says ISO-2022-JP around Shift_JIS or EUC-JP bytes).
    assert decode("ツール".encode("cp932"), None, hint="iso-2022-jp") == "ツール"
    assert decode("ツール".encode("cp932"), "iso-2022-jp") == "ツール"
    assert decode("警報の確認".encode("euc_jp"), "iso-2022-jp") == "警報の確認"


def test_encoded_words_split_over_folded_lines() -> None:
    value = "=?utf-8?b?w7Y=?=\r\n =?utf-8?b?w7Y=?= och\r\n =?UTF-8?Q?lite mer?="
    assert decode_value(value) == "öö och lite mer"
    assert decode_value("=?utf-8?b?w7bDtg?=") == "öö", "base64 with its padding lost"


# -- bodies ------------------------------------------------------------------------------------

def test_unlabelled_eight_bit_body_is_detected() -> None:
    assert "går igång varje natt klockan två" in _read("body_unlabelled_8bit.eml")["body"]


def test_unlabelled_body_reads_in_the_charset_its_headers_name() -> None:
    # Apple Mail's old shape: the subject says ISO-8859-1, the body carries no charset at all;
    # detection alone reads the few 8-bit bytes of a short body as Chinese.
    report = _read("body_unlabelled_header_charset.eml")
    assert report["subject"] == "Dörrlarmet i källaren"
    assert report["body"] == "Hej!\n\n/Åsa"


def test_mixed_html_and_plain_parts_read_whole_and_in_order() -> None:
    # An HTML mail after a gateway appended its plain disclaimer: the words are in the HTML.
    report = _read("body_mixed_html_and_disclaimer.eml")
    assert report["body"].startswith("Hej,\n\nlarmet i hallen går igång varje natt klockan två.\n\nEva\n")
    assert report["body"].endswith("Detta e-postmeddelande kan innehålla konfidentiell information.")
    assert report["new_text"] == "Hej,\n\nlarmet i hallen går igång varje natt klockan två."
    # An alternative stays one piece in its plain form, and broken boundaries change nothing.
    alternative = parse(b"From: a@kund.example\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
                        b"Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\n"
                        b"plain form\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>html form</p>\r\n--a--\r\n--m\r\n"
                        b"Content-Type: text/html\r\n\r\n<p>and more</p>\r\n--m--\r\n")
    assert alternative.text_plain == "plain form\nand more"


@pytest.mark.parametrize(("name", "starts", "new_text"), [
    # PHPMailer's stock plain form of an HTML-only mail: the words are in the HTML.
    ("body_html_stub_plain.eml", "Hej,\n\nvi beställde tolv rökdetektorer men fick bara sex.",
     "Hej,\n\nvi beställde tolv rökdetektorer men fick bara sex.\n\nKan ni skicka resten till lagret i Västerås?"),
    # A web form's mailer: a heading as the plain form, the details only in the HTML table.
    ("body_plain_says_less.eml", "Ny serviceanmälan", None),
])
def test_a_plain_alternative_that_says_less_gives_way_to_the_html(name: str, starts: str, new_text: str | None) -> None:
    report = _read(name)
    assert report["body"].startswith(starts)
    assert "activate HTML" not in report["body"]
    if new_text is not None:
        assert report["new_text"] == new_text and report["signature"] == "Karin"
    else:
        assert "fel 31" in report["body"] and "fel 31" in report["new_text"]


def test_a_plain_alternative_that_says_as_much_stays_the_body() -> None:
    raw = (b"From: a@kund.example\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n"
           b"Content-Type: text/plain\r\n\r\nThe panel shows error 31.\r\n\r\n> earlier words\r\n--a\r\n"
           b"Content-Type: text/html\r\n\r\n<html><head><style>p { margin: 0 } td { padding: 4px }</style></head>"
           b"<body><!--[if gte mso 9]><xml><o:OfficeDocumentSettings><o:AllowPNG/></o:OfficeDocumentSettings>"
           b"</xml><![endif]--><p>The <b>panel</b> shows error 31.</p><blockquote>earlier words</blockquote>"
           b"</body></html>\r\n--a--\r\n")
    assert parse(raw).text_plain == "The panel shows error 31.\n\n> earlier words"


def test_weighing_the_html_form_is_one_pass_over_hostile_markup() -> None:
    # Styles and comments that never close, by the hundred thousand: read once, not once per opening.
    html = b"<style " * 100_000 + b"<!-- " * 100_000
    raw = (b"From: a@kund.example\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n"
           b"Content-Type: text/plain\r\n\r\nLarmet piper.\r\n--a\r\nContent-Type: text/html\r\n\r\n"
           + html + b"\r\n--a--\r\n")
    assert parse(raw).text_plain == "Larmet piper."


def test_multipart_with_wrong_transfer_encoding_and_text_after_binary_part() -> None:
    report = _read("body_wrong_cte_multipart.eml")
    assert report["body"] == ("Centralen visar fel 31 efter strömavbrottet. Bild bifogad.\n"
                              "Andra delen: även larmpanelen i källaren är släckt.")
    assert [a["filename"] for a in report["attachments"]] == ["central.jpg"]


def test_failed_strict_decode_falls_back_per_part_without_escapes() -> None:
    raw = (b"From: a@kund.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n") + "Dörren är låst.".encode("cp1252") + (
           b"\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n") + "Tack så mycket.".encode() + b"\r\n--b--\r\n"
    assert parse(raw).text_plain == "Dörren är låst.\nTack så mycket."


# -- attachments, all of them, byte-exact --------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3


def _raw_part(raw: bytes, start_marker: bytes, end_marker: bytes) -> bytes:
    start = raw.index(start_marker)
    start = raw.index(b"\r\n\r\n", start) + 4
    return raw[start:raw.index(end_marker, start)]


def test_every_part_that_is_not_the_body_is_an_attachment_byte_exact() -> None:
    raw = (FIXTURES / "attachments_all.eml").read_bytes()
    mail = parse(raw)
    got = {a.filename: a for a in mail.attachments}
    assert list(got) == ["image.png", "larmlogg.txt", "rapport.html", "debug.log", "fw.bin", "Larm i zon 4.eml"]
    assert got["image.png"].payload == PNG and got["image.png"].content_id == "<panel@kund>"
    assert got["larmlogg.txt"].payload == "2026-03-03 02:00 ZON 4 LARM\r\n2026-03-03 02:01 ZON 4 ÅTERSTÄLLD".encode()
    assert got["rapport.html"].content_type == "text/html"
    assert got["debug.log"].payload == b"log line 1\nlog line 2\n", "base64 with its padding lost"
    assert got["fw.bin"].payload == b"firmware v3.4.1 dump\x00\x01\x02", "x-uuencode"
    attached = got["Larm i zon 4.eml"]
    assert attached.payload == _raw_part(raw, b"Content-Type: message/rfc822", b"------=_Part_1--")[:-2]
    assert mail.text_plain.strip() == "Här är loggarna och en bild på panelen."


def test_delivery_report_and_returned_message_are_attachments() -> None:
    raw = (FIXTURES / "sender_mailer_daemon.eml").read_bytes()
    report = read_mail(raw, envelope="<>")
    names = [(a["filename"], a["content_type"]) for a in report["attachments"]]
    assert names == [("delivery-status.txt", "message/delivery-status"),
                     ("[#100001] Tack, vi har tagit emot ditt ärende.eml", "message/rfc822")]
    returned = _raw_part(raw, b"Content-Type: message/rfc822", b"\r\n--b1--")
    assert report["attachments"][1]["sha256"] == hashlib.sha256(returned).hexdigest()
    assert "Final-Recipient" not in report["body"], "the report is not folded into the body"


def test_parts_without_a_file_name_are_named_by_their_description() -> None:
    # Postfix labels each part of its report; the returned headers carry no subject to name them by.
    report = read_mail((FIXTURES / "bounce_described_parts.eml").read_bytes(), envelope="<>")
    assert [(a["filename"], a["content_type"]) for a in report["attachments"]] == [
        ("Delivery report.txt", "message/delivery-status"),
        ("Undelivered Message Headers.txt", "text/rfc822-headers")]
    assert report["kind"] == "bounce"


def test_uuencoded_file_in_a_text_body_becomes_an_attachment() -> None:
    report = _read("attachments_uuencode_body.eml")
    assert report["new_text"] == "Här kommer konfigurationsfilen."
    assert [(a["filename"], a["size"]) for a in report["attachments"]] == [("config.dat", 23)]


# -- postdesk route over a folder and an mbox ----------------------------------------------------

def test_route_json_reads_a_folder_and_an_mbox_in_one_process(tmp_path: Path) -> None:
    mbox = tmp_path / "inbox.mbox"
    messages = [(FIXTURES / n).read_bytes().replace(b"\r\n", b"\n") for n in ("sender_null_first.eml", "body_unlabelled_8bit.eml")]
    mbox.write_bytes(b"".join(b"From someone@kund.example Tue Mar  3 10:00:00 2026\n" + m + b"\n" for m in messages))
    result = subprocess.run([sys.executable, "-m", "gateway", "route", "--json", "--mail-only", str(FIXTURES), str(mbox)],
                            cwd=REPO, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(reports) == len(list(FIXTURES.glob("*.eml"))) + 2
    assert [r["file"] for r in reports[-2:]] == [f"{mbox}#1", f"{mbox}#2"]
    assert reports[-2]["sender"]["address"] == "ove.berg@kund.example"
    keys = {"sender", "subject", "kind", "reasons", "may_auto_answer", "body", "html_text", "new_text", "signature",
            "attachments", "quarantine"}
    assert all(keys <= set(r) for r in reports)
    assert {"filename", "content_type", "size", "sha256", "content_id"} <= set(reports[0]["attachments"][0])


def test_x_uuencode_part_without_its_begin_line() -> None:
    import binascii

    data = b"panel config \x00\xff" * 5
    lines = "".join(binascii.b2a_uu(data[i:i + 45]).decode() for i in range(0, len(data), 45))
    raw = ("From: a@kund.example\r\nSubject: uu\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nSe bilaga.\r\n--b\r\nContent-Type: application/octet-stream; name=p.cfg\r\n"
           f"Content-Transfer-Encoding: x-uuencode\r\n\r\n{lines}`\r\n\r\n--b--\r\n").encode()
    (attachment,) = parse(raw).attachments
    assert (attachment.filename, attachment.payload) == ("p.cfg", data)


def test_wide_charsets_are_not_mistaken_for_utf8() -> None:
    assert decode("Hej då".encode("utf-16-le"), "UTF-16LE") == "Hej då"


def test_raw_header_bytes_without_a_body_charset_are_detected_together() -> None:
    raw = "From: Zbigniew Łęcki <z@kund.example>\nSubject: Zażółć gęślą jaźń, drzwi nie działają\n\nhej\n".encode("cp1250")
    mail = parse(raw)
    assert (mail.from_name, mail.subject) == ("Zbigniew Łęcki", "Zażółć gęślą jaźń, drzwi nie działają")


def test_address_domain_classes_are_the_stated_ones_over_every_code_point() -> None:
    """The address pattern's domain classes, written as what they leave out (fast to compile),
    admit exactly A-Z, a-z, 0-9 and U+00A0..U+FFFF (and, after the first, dots and hyphens)."""
    import re

    from gateway.mail.addresses import DOMAIN_REST, DOMAIN_START

    start, rest = re.compile(DOMAIN_START), re.compile(DOMAIN_REST)
    stated_start = re.compile("[A-Za-z0-9\u00a0-\uffff]")
    stated_rest = re.compile("[A-Za-z0-9\u00a0-\uffff.-]")
    for code in range(0x110000):
        char = chr(code)
        assert bool(start.match(char)) is bool(stated_start.match(char)), hex(code)
        assert bool(rest.match(char)) is bool(stated_rest.match(char)), hex(code)


def test_the_fast_reading_of_one_plain_address_agrees_with_the_stdlib() -> None:
    # `simple_pair` spares getaddresses for the common `Name <a@b.c>`; wherever it answers, it
    # must answer as getaddresses does, over values built from the pieces real headers hold.
    import random
    from email.utils import getaddresses

    from gateway.mail.addresses import simple_pair

    pieces = ["Anna", "Anna Svensson", '"Svensson, Anna"', '"A \\" B"', "=?utf-8?q?M=C3=BCller?=", "J. Q. Public",
              "", " ", "a.b@c.de", "<a@b.example>", "a@b.example", "x@y", "<x@y.z>", "@", "<", ">", ",", ";", ":",
              '"', "(c)", "[1.2.3.4]", "a..b@c.de", ".a@b.cd", "a@b..cd", "a@-b.cd", "\t", "Ann  Svensson", "å"]
    chars = "abc .,;:@<>\"()[]\\!#$%&'*+/=?^_`{|}~-\tåé"
    rng = random.Random(7)
    answered = 0
    for _ in range(30000):
        value = "".join(rng.choice(pieces) if rng.random() < 0.8 else rng.choice(chars)
                        for _ in range(rng.randint(1, 4)))
        pair = simple_pair(value)
        if pair is not None:
            answered += 1
            assert [pair] == getaddresses([value]), value
    assert answered > 1000, "the fast reading answers for the common forms"
    assert simple_pair("Anna Svensson <anna@kund.example>") == ("Anna Svensson", "anna@kund.example")


def test_an_encoded_word_with_a_comma_inside_stays_one_name() -> None:
    # Outlook Express writes the comma of "Bürling, Andreas" unencoded inside the encoded-word;
    # split at it, the name would be "=20Andreas?=" and the second address of To lost its name.
    report = _read("sender_encoded_word_comma_inside.eml")
    assert report["sender"] == {"address": "A.Buerling@Kunde.example", "name": "Bürling, Andreas", "from": "From"}
    mail = parse((FIXTURES / "sender_encoded_word_comma_inside.eml").read_bytes())
    assert mail.to == ["support@telenta.example", "eva@kunde.example"]


@pytest.mark.parametrize(("header", "label", "written"), [
    # The label is the body's and right: a detector would read these few bytes as Big5 or cp1250.
    ("Łukasz Żółć", "iso-8859-2", "iso-8859-2"),
    ("Åsa Öberg", "iso-8859-1", "iso-8859-1"),
    ("Иван Петров", "koi8-r", "koi8-r"),
])
def test_raw_header_bytes_keep_the_body_charset_where_it_reads_as_letters(header: str, label: str,
                                                                          written: str) -> None:
    raw = (f"From: {header} <kund@kund.example>\nSubject: {header}\n"
           f"Content-Type: text/plain; charset={label}\n\nhej\n").encode(written)
    mail = parse(raw)
    assert (mail.from_name, mail.subject) == (header, header)


def test_raw_header_bytes_that_read_as_symbols_in_the_body_charset_are_detected() -> None:
    # GB2312 headers over an ASCII text part labelled ISO-8859-1: read as Latin-1 they are
    # "×ª·¢£ºÕûÌå…"; all of the headers' bytes together are GB18030.
    report = _read("headers_raw_gb2312_latin1_body.eml")
    assert report["sender"] == {"address": "wu.lancheng@kund.example", "name": "武兰成", "from": "From"}
    assert report["subject"] == "转发：整体提升企业服务水平"
    # One header alone, with that label as its hint: the same reading.
    assert decode("转发：整体提升企业服务水平".encode("gb2312"), None, hint="iso-8859-1") == "转发：整体提升企业服务水平"
