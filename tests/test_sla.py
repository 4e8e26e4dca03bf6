"""Business calendars and SLA clocks, driven by explicit instants (no sleeping, no real clock)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.tickets.calendar import (
    BusinessCalendar,
    add_business_time,
    business_time_between,
    next_business_instant,
)
from gateway.tickets.explain import explain, format_duration
from gateway.tickets.lifecycle import Event, Kind, Status
from gateway.tickets.sla import (
    ClockState,
    SlaPlan,
    compute_clocks,
)

STHLM = ZoneInfo("Europe/Stockholm")
UTC = UTC
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
S = Status


def local(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=STHLM)


# Wednesday 4 March 2026, Stockholm: the default day for 24/7 scenarios.
def wed(h: int, mi: int = 0, s: int = 0) -> datetime:
    return local(2026, 3, 4, h, mi, s)


WEEKDAYS = BusinessCalendar.from_config(
    "office", {"timezone": "Europe/Stockholm", "hours": {"mon-fri": "08:00-17:00"}}
)
OFFICE_SAT = BusinessCalendar.from_config(
    "office",
    {
        "timezone": "Europe/Stockholm",
        "hours": {"mon-fri": "08:00-17:00", "sat": "09:00-12:00"},
        "holidays": ["2026-12-24", "2026-12-25"],
    },
)
AROUND = BusinessCalendar.always("Europe/Stockholm")
PLAN = SlaPlan("standard", assign=30 * MIN, first_response=HOUR, resolution=4 * HOUR)
OFFICE_PLAN = SlaPlan("office", assign=30 * MIN, calendar="office")


def created(at: datetime, status: Status = S.NEW) -> Event:
    return Event(at, Kind.CREATED, status, actor="customer@example.com")


def move(at: datetime, status: Status) -> Event:
    return Event(at, Kind.STATUS, status, actor="agent")


def assigned(at: datetime) -> Event:
    return Event(at, Kind.ASSIGNED, actor="agent", detail="anna")


def responded(at: datetime) -> Event:
    return Event(at, Kind.FIRST_RESPONSE, actor="anna")


def take(at: datetime) -> list[Event]:
    """An agent takes the ticket: assignment and the status change at the same instant."""
    return [assigned(at), move(at, S.IN_PROGRESS)]


# ---------------------------------------------------------------- calendars


def test_config_builder_reads_hours_days_and_holidays() -> None:
    cal = OFFICE_SAT
    assert cal.tz.key == "Europe/Stockholm"
    assert cal.hours[0] == ((time(8), time(17)),)
    assert cal.hours[4] == ((time(8), time(17)),)
    assert cal.hours[5] == ((time(9), time(12)),)
    assert 6 not in cal.hours
    assert cal.holidays == frozenset({date(2026, 12, 24), date(2026, 12, 25)})
    assert not cal.is_always


def test_config_builder_accepts_split_days_lists_wraps_and_midnight() -> None:
    cal = BusinessCalendar.from_config(
        "shop",
        {
            "timezone": "UTC",
            "hours": {
                "Monday": "08:00-12:00, 13:00-17:00",
                "tue,thu": ["09:00-11:00"],
                "sat-sun": "20:00-24:00",
                "wed": "closed",
            },
            # YAML turns an unquoted 2026-12-24 into a date object.
            "holidays": [date(2026, 12, 24)],
        },
    )
    assert cal.hours[0] == ((time(8), time(12)), (time(13), time(17)))
    assert cal.hours[1] == cal.hours[3] == ((time(9), time(11)),)
    assert cal.hours[2] == ()
    assert cal.hours[5] == cal.hours[6] == ((time(20), time(0)),)
    saturday = date(2026, 3, 7)
    opens, closes = cal.windows_on(saturday)[0]
    assert closes - opens == 4 * HOUR
    assert cal.holidays == frozenset({date(2026, 12, 24)})


def test_config_day_range_wraps_around_the_week() -> None:
    raw = {"timezone": "UTC", "hours": {"fri-mon": "10:00-11:00"}}
    cal = BusinessCalendar.from_config("w", raw)
    assert sorted(cal.hours) == [0, 4, 5, 6]


GOOD_HOURS = {"mon-fri": "08:00-17:00"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"hours": GOOD_HOURS}, "calendar 'office': timezone: required"),
        (
            {"timezone": "Europe/Stokholm", "hours": GOOD_HOURS},
            "calendar 'office': timezone: unknown time zone 'Europe/Stokholm'",
        ),
        ({"timezone": "UTC"}, "calendar 'office': hours: required"),
        (
            {"timezone": "UTC", "hours": {"mon-fry": "08:00-17:00"}},
            "calendar 'office': hours['mon-fry']: 'fry' is not a weekday",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": "8-17"}},
            "calendar 'office': hours['mon']: '8-17' is not a range like 08:00-17:00",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": "17:00-08:00"}},
            "calendar 'office': hours['mon']: window 17:00-08:00 ends before it starts",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": "08:00-12:00, 11:00-13:00"}},
            "calendar 'office': hours['mon']: opening windows overlap",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": "25:00-26:00"}},
            "calendar 'office': hours['mon']: '25:00-26:00' has a time outside 00:00-24:00",
        ),
        (
            {"timezone": "UTC", "hours": {"mon-fri": "08:00-17:00", "fri": "09:00-12:00"}},
            "calendar 'office': hours['fri']: fri is given more than once",
        ),
        (
            {"timezone": "UTC", "hours": {"mon-sun": "closed"}},
            "calendar 'office': hours: no business hours on any day",
        ),
        (
            {"timezone": "UTC", "hours": GOOD_HOURS, "holidays": ["2026-12-24", "2026-13-01"]},
            "calendar 'office': holidays[1]: '2026-13-01' is not a date like 2026-12-24",
        ),
        (
            {"timezone": "UTC", "hours": GOOD_HOURS, "holidays": "2026-12-24"},
            "calendar 'office': holidays: expected a list",
        ),
        (
            {"timezone": "UTC", "hours": GOOD_HOURS, "holiday": []},
            "calendar 'office': holiday: unknown key",
        ),
    ],
)
def test_config_errors_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        BusinessCalendar.from_config("office", raw)
    assert message in str(caught.value)


def test_constructor_refuses_a_weekday_out_of_range() -> None:
    with pytest.raises(ValueError, match="weekday 7"):
        BusinessCalendar("bad", STHLM, {7: [(time(8), time(17))]})


def test_friday_afternoon_carries_over_to_monday_morning() -> None:
    friday = local(2026, 3, 6, 16, 50)
    monday = local(2026, 3, 9, 8, 20)
    assert add_business_time(WEEKDAYS, friday, 30 * MIN) == monday
    assert add_business_time(WEEKDAYS, friday, 10 * MIN) == local(2026, 3, 6, 17, 0)
    assert business_time_between(WEEKDAYS, friday, monday) == 30 * MIN
    # The answer is a UTC instant whatever zone the question came in.
    assert add_business_time(WEEKDAYS, friday, 30 * MIN).utcoffset() == timedelta(0)


def test_round_the_clock_calendar_is_wall_time() -> None:
    start, end = wed(10), local(2026, 3, 9, 8, 20)
    assert AROUND.is_always
    assert business_time_between(AROUND, start, end) == end - start
    assert add_business_time(AROUND, start, 30 * MIN) == wed(10, 30)


def test_holidays_are_closed_days() -> None:
    wednesday = local(2026, 12, 23, 16, 50)
    # Thursday and Friday are holidays; Saturday has its short morning.
    assert add_business_time(OFFICE_SAT, wednesday, 30 * MIN) == local(2026, 12, 26, 9, 20)
    assert business_time_between(OFFICE_SAT, local(2026, 12, 24, 0), local(2026, 12, 26, 0)) == (
        timedelta(0)
    )


def test_dst_spring_forward_weekend() -> None:
    # Stockholm moves from CET (+1) to CEST (+2) on Sunday 29 March 2026.
    friday = local(2026, 3, 27, 16, 50)
    due = add_business_time(WEEKDAYS, friday, 30 * MIN)
    assert due == datetime(2026, 3, 30, 6, 20, tzinfo=UTC)
    assert due.astimezone(STHLM).hour == 8


def test_dst_fall_back_weekend() -> None:
    # Back to CET on Sunday 25 October 2026.
    friday = local(2026, 10, 23, 16, 50)
    due = add_business_time(WEEKDAYS, friday, 30 * MIN)
    assert due == datetime(2026, 10, 26, 7, 20, tzinfo=UTC)


def test_dst_days_have_the_hours_they_really_have() -> None:
    sundays = BusinessCalendar.from_config(
        "sun", {"timezone": "Europe/Stockholm", "hours": {"sun": "00:00-24:00"}}
    )
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)
    spring_day = business_time_between(sundays, local(2026, 3, 29, 0), local(2026, 3, 30, 0))
    autumn_day = business_time_between(sundays, local(2026, 10, 25, 0), local(2026, 10, 26, 0))
    assert spring_day == 23 * HOUR
    assert autumn_day == 25 * HOUR
    night = BusinessCalendar("night", STHLM, {6: [(time(1), time(4))]})
    (opens, closes), = night.windows_on(spring)
    assert closes - opens == 2 * HOUR
    (opens, closes), = night.windows_on(autumn)
    assert closes - opens == 4 * HOUR


def test_a_year_of_weekdays_spans_dst_both_ways() -> None:
    monday = local(2026, 1, 5, 0)
    year = 52 * 5 * 9 * HOUR
    assert business_time_between(WEEKDAYS, monday, local(2027, 1, 4, 0)) == year
    assert add_business_time(WEEKDAYS, monday, year) == local(2027, 1, 1, 17)


def test_next_business_instant() -> None:
    assert next_business_instant(WEEKDAYS, local(2026, 3, 7, 12)) == local(2026, 3, 9, 8)
    assert next_business_instant(WEEKDAYS, local(2026, 3, 9, 9)) == local(2026, 3, 9, 9)
    assert next_business_instant(WEEKDAYS, local(2026, 3, 9, 17)) == local(2026, 3, 10, 8)


def test_calendar_arithmetic_refuses_naive_times_and_negative_spans() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        business_time_between(WEEKDAYS, datetime(2026, 3, 4, 8), wed(9))
    with pytest.raises(ValueError, match="negative"):
        add_business_time(WEEKDAYS, wed(9), -MIN)
    assert business_time_between(WEEKDAYS, wed(12), wed(10)) == timedelta(0)


# ---------------------------------------------------------------- plans


def test_plan_validation() -> None:
    with pytest.raises(ValueError, match="resolution: must be positive"):
        SlaPlan("p", resolution=timedelta(0))
    with pytest.raises(ValueError, match="warn_before: a fraction"):
        SlaPlan("p", warn_before=1.5)
    assert SlaPlan("p").assign == 30 * MIN
    assert SlaPlan("p", warn_before=0.2).warn_window(HOUR) == 12 * MIN


def test_plan_and_calendar_must_agree() -> None:
    with pytest.raises(ValueError, match="counts calendar 'office', given 'always'"):
        compute_clocks([created(wed(10))], OFFICE_PLAN, AROUND, wed(11))
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_clocks([created(wed(10))], PLAN, AROUND, datetime(2026, 3, 4, 11))


# ---------------------------------------------------------------- clocks


@pytest.mark.parametrize("waiting", [S.WAITING_CUSTOMER, S.WAITING_THIRD_PARTY])
def test_waiting_pauses_and_work_resumes_the_clock(waiting: Status) -> None:
    events = [
        created(wed(10)),
        *take(wed(10, 5)),
        move(wed(10, 20), waiting),
        move(wed(12, 30), S.IN_PROGRESS),
    ]
    during = compute_clocks(events, PLAN, AROUND, wed(11)).resolution
    later_in_pause = compute_clocks(events, PLAN, AROUND, wed(12, 29)).resolution
    assert during is not None and later_in_pause is not None
    assert during.state is ClockState.PAUSED
    assert during.elapsed == later_in_pause.elapsed == 20 * MIN
    assert during.due == wed(11) + 3 * HOUR + 40 * MIN
    assert not during.warning

    after = compute_clocks(events, PLAN, AROUND, wed(13)).resolution
    assert after is not None
    assert after.state is ClockState.RUNNING
    assert after.elapsed == 50 * MIN
    assert after.paused == 2 * HOUR + 10 * MIN
    assert after.paused_by == ((waiting, 2 * HOUR + 10 * MIN),)
    assert after.due == wed(16, 10)


def test_multiple_pauses_add_up_per_waiting_status() -> None:
    events = [
        created(wed(10)),
        *take(wed(10, 5)),
        move(wed(10, 20), S.WAITING_CUSTOMER),
        move(wed(11), S.IN_PROGRESS),
        move(wed(11, 30), S.WAITING_THIRD_PARTY),
        move(wed(12, 30), S.WAITING_CUSTOMER),
        move(wed(13), S.IN_PROGRESS),
    ]
    clocks = compute_clocks(events, PLAN, AROUND, wed(14))
    resolution = clocks.resolution
    assert resolution is not None
    assert resolution.elapsed == (20 + 30 + 60) * MIN
    assert resolution.paused_by == (
        (S.WAITING_CUSTOMER, 70 * MIN),
        (S.WAITING_THIRD_PARTY, HOUR),
    )
    assert resolution.paused == clocks.paused == 130 * MIN
    assert resolution.due == wed(14) + 4 * HOUR - 110 * MIN
    assert "paused 1h10m waiting for customer and 1h waiting for third party" in explain(resolution)


def test_arrival_friday_afternoon_is_due_monday_morning() -> None:
    events = [created(local(2026, 3, 6, 16, 50))]
    friday = compute_clocks(events, OFFICE_PLAN, WEEKDAYS, local(2026, 3, 6, 16, 55)).assign
    saturday = compute_clocks(events, OFFICE_PLAN, WEEKDAYS, local(2026, 3, 7, 12)).assign
    monday = compute_clocks(events, OFFICE_PLAN, WEEKDAYS, local(2026, 3, 9, 8, 10)).assign
    assert friday is not None and saturday is not None and monday is not None
    assert friday.elapsed == 5 * MIN
    assert saturday.elapsed == 10 * MIN
    assert saturday.state is ClockState.RUNNING
    assert friday.due == saturday.due == monday.due == local(2026, 3, 9, 8, 20)
    # The warning comes ten minutes before the due time, not all weekend.
    assert not saturday.warning
    assert monday.warning
    assert explain(saturday) == (
        "assign due 2026-03-09 08:20 Europe/Stockholm: 30 min of business time "
        "(calendar office) from 2026-03-06 16:50, 10 min used"
    )


def test_holiday_arrival_waits_for_the_next_open_day() -> None:
    plan = SlaPlan("office", assign=30 * MIN, calendar="office")
    events = [created(local(2026, 12, 24, 10))]
    assign = compute_clocks(events, plan, OFFICE_SAT, local(2026, 12, 24, 15)).assign
    assert assign is not None
    assert assign.elapsed == timedelta(0)
    assert assign.due == local(2026, 12, 26, 9, 30)


def test_dst_week_due_time_is_in_summer_time() -> None:
    events = [created(local(2026, 3, 27, 16, 50))]
    assign = compute_clocks(events, OFFICE_PLAN, WEEKDAYS, local(2026, 3, 28, 12)).assign
    assert assign is not None
    assert assign.due == datetime(2026, 3, 30, 6, 20, tzinfo=UTC)
    assert "due 2026-03-30 08:20 Europe/Stockholm" in explain(assign)


def test_met_targets_stop_counting() -> None:
    events = [created(wed(10)), *take(wed(10, 10)), responded(wed(10, 40))]
    for now in (wed(11), local(2026, 3, 5, 11)):
        clocks = compute_clocks(events, PLAN, AROUND, now)
        assign, first = clocks.assign, clocks.first_response
        assert assign is not None and first is not None
        assert assign.state is ClockState.MET
        assert assign.met_at == wed(10, 10)
        assert assign.elapsed == 10 * MIN
        assert assign.due is None
        assert not assign.breached and not assign.warning
        assert first.met_at == wed(10, 40) and first.elapsed == 40 * MIN
    assert explain(assign) == (
        "assign met 2026-03-04 10:10 Europe/Stockholm: 10 min of 30 min time used since 10:00"
    )


def test_breach_is_strictly_after_the_target() -> None:
    events = [created(wed(10))]
    on_time = compute_clocks(events, PLAN, AROUND, wed(10, 30)).assign
    late = compute_clocks(events, PLAN, AROUND, wed(10, 30, 1)).assign
    assert on_time is not None and late is not None
    assert on_time.elapsed == 30 * MIN
    assert not on_time.breached and on_time.breached_at is None
    assert on_time.due == wed(10, 30)
    assert late.breached
    assert late.breached_at == wed(10, 30)
    assert late.due == wed(10, 30)
    assert not late.warning
    assert explain(late).startswith("assign breached 2026-03-04 10:30 Europe/Stockholm")


def test_met_late_stays_breached_met_on_the_dot_does_not() -> None:
    late = compute_clocks([created(wed(10)), assigned(wed(10, 45))], PLAN, AROUND, wed(12)).assign
    exact = compute_clocks([created(wed(10)), assigned(wed(10, 30))], PLAN, AROUND, wed(12)).assign
    assert late is not None and exact is not None
    assert late.state is ClockState.MET and late.breached and late.breached_at == wed(10, 30)
    assert exact.state is ClockState.MET and not exact.breached


def test_reaching_the_target_at_closing_time_breaches_when_the_office_opens() -> None:
    events = [created(local(2026, 3, 6, 16, 30))]
    weekend = compute_clocks(events, OFFICE_PLAN, WEEKDAYS, local(2026, 3, 7, 12)).assign
    monday = compute_clocks(events, OFFICE_PLAN, WEEKDAYS, local(2026, 3, 9, 8, 1)).assign
    assert weekend is not None and monday is not None
    assert weekend.elapsed == 30 * MIN
    assert not weekend.breached
    assert weekend.due == local(2026, 3, 6, 17)
    assert monday.breached
    assert monday.breached_at == local(2026, 3, 9, 8)


def test_pausing_on_the_due_time_breaches_only_when_work_resumes() -> None:
    events = [
        created(wed(10)),
        move(wed(10, 30), S.WAITING_CUSTOMER),
        move(wed(11), S.IN_PROGRESS),
    ]
    paused = compute_clocks(events, PLAN, AROUND, wed(10, 45)).assign
    resumed = compute_clocks(events, PLAN, AROUND, wed(11, 5)).assign
    assert paused is not None and resumed is not None
    assert paused.elapsed == 30 * MIN and not paused.breached
    assert resumed.breached
    assert resumed.breached_at == wed(11)


def test_warning_window_absolute_and_fraction() -> None:
    events = [created(wed(10))]
    before = compute_clocks(events, PLAN, AROUND, wed(10, 19, 59)).assign
    inside = compute_clocks(events, PLAN, AROUND, wed(10, 20)).assign
    assert before is not None and inside is not None
    assert inside.warn_at == wed(10, 20)
    assert not before.warning and inside.warning

    half = SlaPlan("half", assign=30 * MIN, warn_before=0.5)
    early = compute_clocks(events, half, AROUND, wed(10, 14)).assign
    window = compute_clocks(events, half, AROUND, wed(10, 15)).assign
    assert early is not None and window is not None
    assert not early.warning and window.warning


def test_no_warning_while_paused() -> None:
    waiting = [created(wed(10)), move(wed(10, 1), S.WAITING_CUSTOMER)]
    plan = SlaPlan("tight", assign=None, first_response=2 * MIN)
    tight = compute_clocks(waiting, plan, AROUND, wed(10, 2)).first_response
    assert tight is not None
    assert tight.state is ClockState.PAUSED
    # One minute is left and the window is ten, but nobody can act while the customer owes us.
    assert tight.due == wed(10, 3) and tight.warn_at is not None and wed(10, 2) >= tight.warn_at
    assert not tight.warning
    assert "the clock is paused" in explain(tight)


def test_reopen_resumes_the_resolution_clock() -> None:
    plan = SlaPlan("fix", assign=None, resolution=2 * HOUR)
    resolved = [created(wed(9), S.IN_PROGRESS), move(wed(10), S.RESOLVED)]
    before = compute_clocks(resolved, plan, AROUND, wed(11)).resolution
    assert before is not None
    assert before.state is ClockState.MET and before.met_at == wed(10)
    assert before.elapsed == HOUR

    reopened = [*resolved, move(wed(12), S.IN_PROGRESS)]
    clocks = compute_clocks(reopened, plan, AROUND, wed(12, 30))
    again = clocks.resolution
    assert again is not None
    assert again.state is ClockState.RUNNING and again.met_at is None
    # Resumed: the hour used before the resolution still counts (a restart would say 30 min).
    assert again.elapsed == HOUR + 30 * MIN
    assert again.due == wed(13)
    assert clocks.to_resolution == 3 * HOUR + 30 * MIN

    finished = [*reopened, move(wed(12, 45), S.RESOLVED), move(wed(13, 30), S.CLOSED)]
    final = compute_clocks(finished, plan, AROUND, wed(14)).resolution
    assert final is not None
    assert final.met_at == wed(12, 45)
    assert final.elapsed == HOUR + 45 * MIN and not final.breached


def test_reopen_can_breach_the_resumed_clock() -> None:
    plan = SlaPlan("fix", assign=None, resolution=2 * HOUR)
    events = [
        created(wed(9), S.IN_PROGRESS),
        move(wed(10, 30), S.RESOLVED),
        move(wed(15), S.IN_PROGRESS),
    ]
    clock = compute_clocks(events, plan, AROUND, wed(15, 45)).resolution
    assert clock is not None
    assert clock.breached and clock.breached_at == wed(15, 30)


def test_closing_an_unassigned_ticket_stops_the_assign_clock() -> None:
    events = [created(wed(10)), move(wed(10, 5), S.CLOSED)]
    assign = compute_clocks(events, PLAN, AROUND, local(2026, 3, 5, 10)).assign
    assert assign is not None
    assert assign.state is ClockState.STOPPED
    assert assign.elapsed == 5 * MIN
    assert assign.due is None and not assign.breached and not assign.warning
    assert explain(assign).startswith("assign stopped")


def test_totals_shown_to_the_customer() -> None:
    events = [
        created(wed(10)),
        *take(wed(10, 20)),
        move(wed(11), S.WAITING_CUSTOMER),
        move(wed(12), S.IN_PROGRESS),
        move(wed(13), S.RESOLVED),
    ]
    clocks = compute_clocks(events, PLAN, AROUND, wed(15))
    assert clocks.status is S.RESOLVED
    assert clocks.waiting_for_assignment == 20 * MIN
    assert clocks.in_progress == 100 * MIN
    assert clocks.to_resolution == 3 * HOUR
    assert clocks.paused == HOUR
    assert clocks.per_status[S.RESOLVED] == 2 * HOUR
    assert clocks.per_status[S.NEW] == 20 * MIN


def test_events_after_now_are_ignored_and_order_does_not_matter() -> None:
    events = [created(wed(10)), *take(wed(10, 10)), responded(wed(10, 40))]
    then = compute_clocks(events, PLAN, AROUND, wed(10, 5))
    assert then.status is S.NEW
    assert then.assign is not None and then.assign.met_at is None
    shuffled = events[:]
    random.Random(4).shuffle(shuffled)
    assert compute_clocks(shuffled, PLAN, AROUND, wed(12)) == compute_clocks(
        events, PLAN, AROUND, wed(12)
    )


def test_unmeasured_targets_are_absent() -> None:
    plan = SlaPlan("assign-only")
    clocks = compute_clocks([created(wed(10))], plan, AROUND, wed(10, 5))
    assert clocks.first_response is None and clocks.resolution is None
    assert [clock.name for clock in clocks.targets] == ["assign"]


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=45), "45 s"),
        (30 * MIN, "30 min"),
        (2 * HOUR + 10 * MIN, "2h10m"),
        (2 * HOUR, "2h"),
        (timedelta(days=1, hours=3), "1d3h"),
    ],
)
def test_format_duration(span: timedelta, text: str) -> None:
    assert format_duration(span) == text
