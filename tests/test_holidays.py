"""Public holidays from the `holidays` package in business calendars, plus hand-listed days.

Romania's National Day (1 December) comes from the package's data, not from the config, and so
does St Andrew's Day the day before: a ticket opened in the last working hour of Friday 27
November 2026 in Bucharest has its two-hour target due on Wednesday 2 December, the clock
having stood still over the weekend and both holidays.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.config import Config
from gateway.tickets.calendar import BusinessCalendar, add_business_time, business_time_between
from gateway.tickets.clocks import plan_for
from gateway.tickets.lifecycle import Event, Kind, Status
from gateway.tickets.notices import explain_in
from gateway.tickets.sla import compute_clocks

BUCHAREST = ZoneInfo("Europe/Bucharest")
RO_OFFICE = {"timezone": "Europe/Bucharest", "country": "RO", "hours": {"mon-fri": "09:00-17:00"}}


def test_romanian_national_day_is_skipped_by_the_sla_clock() -> None:
    config = Config(sla={"default_plan": "ro", "calendars": {"ro-office": RO_OFFICE},
                         "plans": {"ro": {"assign": 120, "first_response": None, "resolution": None,
                                          "calendar": "ro-office"}}})
    plan, calendar = plan_for(config, None)
    assert calendar.holiday_name(date(2026, 12, 1)) == "National Day"  # from the package, not the config
    assert calendar.windows_on(date(2026, 12, 1)) == []
    opened = datetime(2026, 11, 27, 16, 0, tzinfo=BUCHAREST)
    log = [Event(opened, Kind.CREATED, Status.NEW, actor="client@firma.example")]
    state = compute_clocks(log, plan, calendar, datetime(2026, 12, 1, 20, 0, tzinfo=BUCHAREST))
    assert state.assign is not None
    assert state.assign.elapsed == timedelta(hours=1), "the hour of 27 November only; 1 December is closed"
    assert state.assign.due == datetime(2026, 12, 2, 10, 0, tzinfo=BUCHAREST)
    assert not state.assign.breached
    text = explain_in(state.assign, "ro", "Europe/Bucharest")
    assert text.startswith("alocare până la 02.12.2026, 10:00 EET"), text


def test_without_the_country_the_first_of_december_is_a_working_day() -> None:
    plain = BusinessCalendar.from_config("plain", {k: v for k, v in RO_OFFICE.items() if k != "country"})
    opened = datetime(2026, 11, 30, 16, 0, tzinfo=BUCHAREST)
    assert add_business_time(plain, opened, timedelta(hours=2)) == datetime(2026, 12, 1, 10, 0, tzinfo=BUCHAREST)
    with_country = BusinessCalendar.from_config("ro", RO_OFFICE)
    assert add_business_time(with_country, opened, timedelta(hours=2)) == datetime(2026, 12, 2, 11, 0, tzinfo=BUCHAREST)


def test_country_holidays_and_extra_days_together() -> None:
    sweden = BusinessCalendar.from_config("se", {"timezone": "Europe/Stockholm", "country": "SE",
                                                 "hours": {"mon-fri": "08:00-17:00"},
                                                 "holidays": ["2026-12-24"]})
    assert sweden.holiday_name(date(2026, 5, 14)) == "Ascension Day"  # a Thursday
    assert sweden.holiday_name(date(2026, 12, 24)) == "extra"
    week = business_time_between(sweden, datetime(2026, 12, 21, tzinfo=ZoneInfo("Europe/Stockholm")),
                                 datetime(2026, 12, 28, tzinfo=ZoneInfo("Europe/Stockholm")))
    assert week == timedelta(hours=9 * 3), "Mon-Wed open; Christmas Eve listed, Christmas Day from the package"


@pytest.mark.parametrize(("raw", "reason"), [
    ({"country": "XX"}, "country: Country XX not available"),
    ({"subdivision": "AB"}, "subdivision: needs a country"),
    ({"country": 46}, "country: expected a code"),
])
def test_bad_country_settings_name_the_key(raw: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        BusinessCalendar.from_config("x", {"timezone": "UTC", "hours": {"mon": "09:00-10:00"}, **raw})
