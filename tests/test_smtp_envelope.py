"""Plain envelope addresses read without the header parser give exactly aiosmtpd's answers.

`gateway.intake.envelope.QuickAddresses` answers `<dot-atom@domain>` itself and hands every
other form to aiosmtpd; here both readers are asked the same MAIL/RCPT arguments: the forms
real clients send, the odd ones RFC 5321 allows, and generated ones.
"""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.intake.envelope import QuickAddresses


def _readers(limit: int = 0) -> tuple[SMTP, QuickAddresses]:
    plain, quick = SMTP.__new__(SMTP), QuickAddresses.__new__(QuickAddresses)
    plain.local_part_limit = quick.local_part_limit = limit
    return plain, quick


def _answer(reader: SMTP, arg: str) -> object:
    """What the reader says, or which exception it raises (aiosmtpd's parser has some of its own)."""
    try:
        return reader._getaddr(arg)
    except Exception as exc:
        return type(exc)


CASES = [
    "<anna@example.se>", "<anna@example.se> SIZE=1234", "<anna@example.se>  BODY=8BITMIME SMTPUTF8",
    "<a.b+tag@sub-domain.example.co.uk>", "<A.Person@EXAMPLE.SE>", "<x@y>", "<>", "<> SIZE=10",
    '<"quoted local"@example.se>', "<@relay.example:anna@example.se>", "<anna@[192.0.2.1]>",
    "<anna@example.se>(comment) SIZE=1", "<anna@example.se>SIZE=1", "< anna@example.se>", "<anna@example.se >",
    " <anna@example.se>", "anna@example.se", "anna@example.se SIZE=1", "<anna..b@example.se>",
    "<anna@example..se>", "<anna@example.se.>", "<.anna@example.se>", "<anna@>", "<@example.se>",
    "<åsa@exempel.se>", "<anna@exempel.se> X=(y)", "<anna@example.se>\tSIZE=1 ", "", "<anna@example.se",
]


@pytest.mark.parametrize("arg", CASES)
def test_known_forms_are_read_as_aiosmtpd_reads_them(arg: str) -> None:
    plain, quick = _readers()
    assert _answer(quick, arg) == _answer(plain, arg)


def test_the_local_part_limit_holds_on_the_quick_path() -> None:
    plain, quick = _readers(limit=5)
    for arg in ["<anna@example.se>", "<annika@example.se> SIZE=1"]:
        assert quick._getaddr(arg) == plain._getaddr(arg)
    assert quick._getaddr("<annika@example.se>") == (None, None)


_ATOM = st.text(alphabet="abcXYZ019!#$%&'*+/=?^_`{|}~-.", min_size=0, max_size=12)
_TAIL = st.text(alphabet=" \tSIZE=12()<>@,;:\"[]", max_size=20)


@settings(max_examples=3000, deadline=None)
@given(local=_ATOM, domain=st.text(alphabet="abc-.019[]", min_size=0, max_size=12), tail=_TAIL,
       shape=st.sampled_from(["<{}@{}>{}", "{}@{}{}", "<{}@{}{}", " <{}@{}>{}"]))
def test_generated_arguments_are_read_as_aiosmtpd_reads_them(local: str, domain: str, tail: str, shape: str) -> None:
    arg = shape.format(local, domain, tail)
    plain, quick = _readers()
    assert _answer(quick, arg) == _answer(plain, arg)
