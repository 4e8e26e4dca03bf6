"""The gettext catalogues and Babel formatting: every marked string translated, times in the
reader's zone with the zone named, durations in words, and a new customer's language guessed
from their own text."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from gateway.i18n import catalogues, formats
from gateway.i18n.detect import _has_letters, detect
from gateway.i18n.extract import missing


@pytest.mark.parametrize("lang", [lang for lang in catalogues.languages() if lang != catalogues.SOURCE])
def test_every_marked_string_is_translated(lang: str) -> None:
    # A string added to a template or to the code without a translation fails here, with its
    # text: run `python -m gateway.i18n.extract` and translate the new entries.
    assert missing(lang) == []


def test_languages_are_the_catalogues_present() -> None:
    assert set(catalogues.languages()) >= {"en", "sv", "ro"}
    assert catalogues.gettext("sv", "Ticket %(number)s", number=7) == "Ärende 7"
    assert catalogues.gettext("ro", "Ticket %(number)s", number=7) == "Tichetul 7"
    assert catalogues.gettext("xx", "Ticket %(number)s", number=7) == "Ticket 7"


def test_times_are_local_with_the_zone_named() -> None:
    noon_utc = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert formats.when(noon_utc, "sv", "Europe/Stockholm") == "2026-12-01 13:00 CET"
    assert formats.when(noon_utc, "ro", "Europe/Bucharest") == "01.12.2026, 14:00 EET"
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert formats.when(summer, "sv", "Europe/Stockholm").endswith("14:00 CEST")
    assert "Europe/Bucharest" in formats.zone_label("Europe/Bucharest", "ro")


def test_durations_are_words_of_the_locale() -> None:
    span = timedelta(days=3, minutes=3)
    assert formats.span(span, "sv") == "3 dygn och 3 minuter"
    assert formats.span(span, "ro") == "3 zile și 3 minute"
    assert formats.span(span, "en") == "3 days and 3 minutes"
    assert formats.span(timedelta(seconds=40), "en") == "40 seconds"


def test_the_models_are_built_once_however_many_ask_while_they_load() -> None:
    """A fresh process: warm_up's thread and three callers at once get one detector, built once."""
    code = """
import threading
from gateway.i18n import detect
builds = []
_build = detect._build
def counted():
    builds.append(1)
    return _build()
detect._build = counted
warm = detect.warm_up()
assert warm is not None and warm.name == "lingua-models"
found = []
callers = [threading.Thread(target=lambda: found.append(detect.detect("Hej! Larmet i trapphuset tjuter hela tiden.")))
           for _ in range(3)]
for t in callers: t.start()
for t in callers: t.join()
warm.join()
print(len(builds), found, detect.warm_up())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=1) == ["1", "['sv', 'sv', 'sv'] None\n"]


# A Romanian confirmation whose signed link's random letters, read as words, made Lingua call it
# Swedish (one link of about fifty did; this is one of them).
RO_CONFIRMATION = """Bună ziua,

Vă mulțumim pentru mesaj. Solicitarea dumneavoastră a fost înregistrată cu numărul 100000.
Un agent vă va răspunde cât mai curând posibil.

Pentru a adăuga informații, răspundeți la acest e-mail și păstrați [#100000] în subiect.
Puteți urmări solicitarea aici: http://localhost:8080/t/KkhJHF5KirtqStbuKtY-PGqyWUnSsvHfBd1qIvJdybCzpBKJb9QtWktHQ3o5LQ_LdQzNvnJIiUgl4VOy

Cu stimă,
Telenta Support
"""


def test_links_addresses_and_numbers_are_not_read_as_words() -> None:
    from gateway.i18n.detect import _detector

    found = _detector().detect_language_of(RO_CONFIRMATION)
    assert found is not None and found.iso_code_639_1.name == "SV", "the link alone sways the models"
    assert detect(RO_CONFIRMATION) == "ro"
    # A sentence's worth of letters only in an address, a link and an order number: nothing to tell.
    assert detect("Order KX-20931-AB, see https://shop.example/orders/KX20931 or mail ordrar@kund.example") is None


def test_detects_the_language_of_a_customers_text() -> None:
    assert detect("Hej! Brandlarmet i trapphuset tjuter hela tiden, kan ni skicka någon?") == "sv"
    assert detect("Bună ziua, centrala de incendiu din clădire nu mai funcționează de ieri.") == "ro"
    assert detect("Hello, the fire alarm in the stairwell keeps ringing, can you send someone?") == "en"
    assert detect("Hej") is None  # too short to tell
    # Letters are what counts: digits, signs and spaces say nothing of a language.
    assert detect("Hej då 0701234567, 08-123 45 67!!! ...") is None
    assert detect("1234 5678 9012 3456 " * 20 + "Hej! Brandlarmet i trapphuset tjuter hela tiden.") == "sv"
    assert _has_letters("å1b2c3", 3) and not _has_letters("å1b2 3!", 3) and not _has_letters("", 1)


@pytest.mark.parametrize("lang", catalogues.languages())
def test_translations_keep_the_placeholders(lang: str) -> None:
    # A translation that drops or misspells %(number)s would fail when a mail is rendered.
    from babel.messages.pofile import read_po

    with catalogues.po_path(lang).open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    assert [(message.id, [str(e) for e in errors]) for message, errors in catalog.check()] == []


@pytest.mark.parametrize("lang", ["sv", "ro"])
def test_a_mail_is_in_one_language_from_subject_to_signature(lang: str) -> None:
    from pathlib import Path

    from gateway.doctor import EVENT_CONTEXT, SAMPLE_CONTEXT
    from gateway.templating import MailTemplates

    templates = MailTemplates(Path(__file__).resolve().parents[1] / "templates")
    for event in ("closed", "resolved", "signin", "info_requested", "agent_command_result"):
        mail = templates.render(event, lang, **SAMPLE_CONTEXT, **EVENT_CONTEXT.get(event, {}))
        words = f"{mail.subject}\n{mail.text}".replace(SAMPLE_CONTEXT["subject"], "").replace("A sample text.", "")
        assert mail.language == lang
        assert detect(words) == lang, f"{event} in {lang}:\n{words}"
        for english in ("Hello", "Kind regards", "Your request", "ticket", "mail again"):
            assert english not in words, f"{english!r} in the {lang} {event} mail:\n{words}"


def test_time_zone_order_person_organisation_department_calendar_default() -> None:
    from gateway.config import Agent, Config
    from gateway.routing import people
    from gateway.routing.directory import Department, Directory, Organisation

    directory = Directory(
        departments=[Department("ro-national", timezone="Europe/Bucharest"), Department("ro-iasi", parent="ro-national")],
        organisations=[Organisation("Tecnet", department="ro-iasi"), Organisation("Kund AB", timezone="Europe/Helsinki")],
    )
    config = Config(sla={"default_plan": "office", "calendars": {"cal": {"timezone": "Europe/Lisbon",
                                                                          "hours": {"mon-fri": "09:00-17:00"}}},
                         "plans": {"office": {"calendar": "cal"}}})
    assert people.customer_zone(config, directory, "Asia/Tokyo", "Kund AB") == "Asia/Tokyo"
    assert people.customer_zone(config, directory, None, "Kund AB") == "Europe/Helsinki"
    assert people.customer_zone(config, directory, None, "Tecnet") == "Europe/Bucharest", "the national team's"
    assert people.customer_zone(config, directory, None, None) == "Europe/Lisbon", "the business calendar's"
    assert people.customer_zone(Config(), directory, None, None) == "Europe/Stockholm", "tickets.timezone"
    agent = Agent(name="A", address="a@telenta.example", departments=("ro-iasi",))
    assert people.agent_zone(config, directory, agent) == "Europe/Bucharest"


def test_an_agents_own_zone_and_language_survive_the_merge_with_the_directory() -> None:
    from gateway.config import Agent, Config
    from gateway.routing import people, staff
    from gateway.routing.directory import Department, Directory

    directory = Directory(departments=[Department("ro-iasi", members=["ana@telenta.example"], language="ro",
                                                  timezone="Europe/Bucharest")])
    own = Agent(name="Ana", address="Ana@telenta.example", language="en", timezone="Europe/Lisbon")
    config = Config(agents=(own,))
    staff.attach(config, directory)
    merged = config.agent("ana@telenta.example")
    assert merged is not None and merged.departments == ("ro-iasi",)
    assert people.agent_zone(config, directory, merged) == "Europe/Lisbon"
    assert people.agent_language(config, directory, merged) == "en"
