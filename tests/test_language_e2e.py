"""Languages end to end on the shipped config: a new customer's mail in the language they wrote
in, and a Swedish manager's SLA notice wholly in Swedish while the instance default is English.

The daemon runs `config/postdesk.yaml` as shipped (tickets.language: en), with agents added;
mail goes over SMTP to a real process, notices come out of the scheduler's duties driven with a
controlled clock.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.i18n.detect import detect
from tests import deskdaemon
from tests.harness import REPO, Daemon, Sink, make_mail, unique_address
from tests.scheduled import created_at, duties_for

AGENTS = """agents:
  - {name: Karin Brand, address: karin.brand@telenta.example, departments: [fire-national], role: manager,
     language: sv, timezone: Europe/Stockholm}
  - {name: Lena Lead, address: lead@telenta.example, role: lead}
"""
SWEDISH = "Hej! Brandlarmet i trapphuset tjuter hela tiden sedan i morse. Kan ni skicka en tekniker?\n"
ROMANIAN = "Bună ziua! Centrala de incendiu din clădirea noastră sună încontinuu de azi-dimineață.\n"
ENGLISH = "Hello, the fire alarm in our stairwell has been ringing since this morning. Can you help?\n"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shipped = (REPO / "config" / "postdesk.yaml").read_text(encoding="utf-8")
    assert "\nagents: []\n" in shipped and "  language: en\n" in shipped
    path = tmp_path_factory.mktemp("config") / "postdesk.yaml"
    path.write_text(shipped.replace("\nagents: []\n", "\n" + AGENTS), encoding="utf-8")
    return path


desk = deskdaemon.desk_on_config_file()


def _confirmation(desk: Daemon, sink: Sink, body: str, subject: str = "Brandlarm") -> Any:
    customer = unique_address()
    desk.send(make_mail(sender=customer, subject=subject, body=body), sender=customer)
    return sink.wait_for(customer)[0].message


@pytest.mark.parametrize(("body", "subject", "lang", "words"), [
    (SWEDISH, "Fråga om larmet", "sv", "Tack för ditt meddelande"),
    (ROMANIAN, "Întrebare", "ro", "Vă mulțumim"),
    (ENGLISH, "Question", "en", "Thank you for your message"),
])
def test_new_customer_gets_mail_in_the_language_they_wrote(desk: Daemon, sink: Sink, body: str, subject: str,
                                                          lang: str, words: str) -> None:
    # No help topic in the subject: no department names a language, so the text decides.
    mail = _confirmation(desk, sink, body, subject=subject)
    assert words in mail.get_content()
    assert detect(mail.get_content()) == lang


@pytest.fixture
def duties(desk: Daemon, config_file: Path) -> Any:
    with duties_for(desk, config_file) as found:
        yield found


# Words of the English templates and notices that a Swedish notice must not contain.
ENGLISH_WORDS = ("target", "ticket", "Ticket", "breached", "due", "business", "used", "Latest", "messages",
                 "Reply", "customer", "calendar", "minutes", "hour")


def test_swedish_managers_sla_notice_is_wholly_swedish(desk: Daemon, sink: Sink, duties: Any) -> None:
    mail = _confirmation(desk, sink, SWEDISH, subject="Brandlarm i källaren")
    number = int(re.search(r"\[#(\d+)\]", str(mail["Subject"])).group(1))  # type: ignore[union-attr]
    start = created_at(desk, number)
    duties.run(start + timedelta(minutes=31))  # the 30-minute assign target of the default plan
    rows = desk.db.rows("SELECT raw FROM outbox WHERE rcpt_to = :t AND kind = 'staff:SLA breached'",
                        t="karin.brand@telenta.example")
    notice = next(email.message_from_bytes(bytes(raw), policy=email.policy.default)
                  for (raw,) in rows if str(number).encode() in bytes(raw))
    subject, body = str(notice["Subject"]).strip(), notice.get_content()
    assert subject.startswith(f"[Postdesk] SLA överskridet [#{number}]")
    assert f"Målet för tilldelning i ärende {number} är överskridet." in body
    assert "30 minuter klocktid" in body
    # Times are Stockholm's, named: the notice says CET (winter) or CEST (summer).
    assert re.search(r"\d\d:\d\d CES?T", body)
    # The agent commands (#waiting customer) are syntax, and addresses are names: both stay.
    words = re.sub(r"\S+@\S+", "", "\n".join(line for line in body.splitlines() if not line.startswith("#")))
    for word in ENGLISH_WORDS:
        assert not re.search(rf"\b{word}\b", subject + words), f"English {word!r} in a Swedish notice:\n{body}"
    assert detect(body) == "sv"
