"""Statuses, transitions, display names and the event log of `gateway.tickets.lifecycle`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.tickets.lifecycle import (
    ALLOWED,
    Event,
    InvalidTransition,
    Kind,
    Status,
    check_transition,
    clock_runs,
    display_name,
    is_reopen,
    status_history,
)

S = Status
T0 = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

EXPECTED_ALLOWED = {
    (S.NEW, S.IN_PROGRESS), (S.NEW, S.WAITING_CUSTOMER), (S.NEW, S.WAITING_THIRD_PARTY),
    (S.NEW, S.RESOLVED), (S.NEW, S.CLOSED),
    (S.IN_PROGRESS, S.WAITING_CUSTOMER), (S.IN_PROGRESS, S.WAITING_THIRD_PARTY),
    (S.IN_PROGRESS, S.RESOLVED), (S.IN_PROGRESS, S.CLOSED),
    (S.WAITING_CUSTOMER, S.IN_PROGRESS), (S.WAITING_CUSTOMER, S.WAITING_THIRD_PARTY),
    (S.WAITING_CUSTOMER, S.RESOLVED), (S.WAITING_CUSTOMER, S.CLOSED),
    (S.WAITING_THIRD_PARTY, S.IN_PROGRESS), (S.WAITING_THIRD_PARTY, S.WAITING_CUSTOMER),
    (S.WAITING_THIRD_PARTY, S.RESOLVED), (S.WAITING_THIRD_PARTY, S.CLOSED),
    (S.RESOLVED, S.IN_PROGRESS), (S.RESOLVED, S.CLOSED),
}  # fmt: skip


def test_status_values_are_the_stored_strings() -> None:
    assert [s.value for s in Status] == [
        "new", "in_progress", "waiting_customer", "waiting_third_party", "resolved", "closed",
    ]  # fmt: skip
    assert Status("waiting_third_party") is Status.WAITING_THIRD_PARTY


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_transition_table_is_exactly_the_designed_one(current: Status, target: Status) -> None:
    if (current, target) in EXPECTED_ALLOWED:
        check_transition(current, target)
        assert target in ALLOWED[current]
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


def test_table_cannot_be_changed_at_runtime() -> None:
    with pytest.raises(TypeError):
        ALLOWED[S.CLOSED] = frozenset({S.IN_PROGRESS})  # type: ignore[index]


def test_refusal_names_both_statuses_and_the_allowed_targets() -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_transition(S.RESOLVED, S.WAITING_CUSTOMER)
    message = str(caught.value)
    assert "from resolved to waiting_customer" in message
    assert "allowed from resolved: in_progress, closed" in message
    assert caught.value.current is S.RESOLVED
    assert caught.value.target is S.WAITING_CUSTOMER
    assert caught.value.allowed == frozenset({S.IN_PROGRESS, S.CLOSED})
    assert isinstance(caught.value, ValueError)


def test_closed_is_final_and_says_so() -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_transition(S.CLOSED, S.IN_PROGRESS)
    message = str(caught.value)
    assert "from closed to in_progress" in message
    assert "nothing" in message and "new ticket" in message


def test_a_status_does_not_move_to_itself() -> None:
    with pytest.raises(InvalidTransition, match="from in_progress to in_progress"):
        check_transition(S.IN_PROGRESS, S.IN_PROGRESS)


def test_reopen_is_resolved_back_to_in_progress_only() -> None:
    assert is_reopen(S.RESOLVED, S.IN_PROGRESS)
    assert not is_reopen(S.WAITING_CUSTOMER, S.IN_PROGRESS)
    assert not is_reopen(S.RESOLVED, S.CLOSED)


def test_clock_runs_only_while_new_or_in_progress() -> None:
    assert {s for s in Status if clock_runs(s)} == {S.NEW, S.IN_PROGRESS}


@pytest.mark.parametrize(
    ("lang", "status", "name"),
    [
        ("en", S.NEW, "Waiting for support"),
        ("en", S.WAITING_THIRD_PARTY, "Waiting for third party"),
        ("sv", S.NEW, "Väntar på support"),
        ("sv", S.IN_PROGRESS, "Pågår"),
        ("sv", S.WAITING_CUSTOMER, "Väntar på kund"),
        ("sv", S.WAITING_THIRD_PARTY, "Väntar på tredje part"),
        ("sv", S.RESOLVED, "Löst"),
        ("sv", S.CLOSED, "Stängd"),
        ("ro", S.NEW, "În așteptare departament support"),
        ("ro", S.IN_PROGRESS, "În lucru"),
        ("ro", S.WAITING_CUSTOMER, "În așteptare client"),
        ("ro", S.WAITING_THIRD_PARTY, "În așteptare terță parte"),
        ("ro", S.RESOLVED, "Rezolvat"),
        ("ro", S.CLOSED, "Închis"),
    ],
)
def test_display_names_per_language(lang: str, status: Status, name: str) -> None:
    assert display_name(status, lang) == name


def test_display_name_reads_region_tags_and_falls_back_to_english() -> None:
    assert display_name(S.RESOLVED, "sv-SE") == "Löst"
    assert display_name(S.RESOLVED, "RO_ro") == "Rezolvat"
    assert display_name(S.RESOLVED, "de") == "Resolved"
    assert display_name(S.RESOLVED, "") == "Resolved"


def test_every_language_names_every_status() -> None:
    for lang in ("en", "sv", "ro"):
        names = {display_name(s, lang) for s in Status}
        assert len(names) == len(Status), lang


def test_event_keeps_time_in_utc() -> None:
    local = datetime(2026, 3, 4, 9, 0, tzinfo=ZoneInfo("Europe/Stockholm"))
    event = Event(local, Kind.CREATED, S.NEW, actor="mail")
    assert event.at == T0
    assert event.at.utcoffset() == timedelta(0)


def test_event_refuses_naive_time_and_missing_status() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Event(datetime(2026, 3, 4, 9, 0), Kind.NOTE)
    with pytest.raises(ValueError, match="'status' is required"):
        Event(T0, Kind.STATUS)


def test_event_accepts_status_as_stored_string() -> None:
    event = Event(T0, "status", "waiting_customer")  # type: ignore[arg-type]
    assert event.status is S.WAITING_CUSTOMER


def test_status_history_orders_by_time_and_drops_repeats() -> None:
    events = [
        Event(T0 + timedelta(hours=2), Kind.STATUS, S.RESOLVED),
        Event(T0, Kind.CREATED, S.NEW),
        Event(T0 + timedelta(minutes=5), Kind.ASSIGNED, actor="anna"),
        Event(T0 + timedelta(minutes=5), Kind.STATUS, S.IN_PROGRESS),
        Event(T0 + timedelta(minutes=9), Kind.STATUS, S.IN_PROGRESS),
    ]
    assert status_history(events) == [
        (T0, S.NEW),
        (T0 + timedelta(minutes=5), S.IN_PROGRESS),
        (T0 + timedelta(hours=2), S.RESOLVED),
    ]


def test_status_history_needs_exactly_one_created_event_first() -> None:
    with pytest.raises(ValueError, match="no 'created' event"):
        status_history([Event(T0, Kind.NOTE)])
    with pytest.raises(ValueError, match="before 'created'"):
        status_history(
            [Event(T0, Kind.STATUS, S.IN_PROGRESS), Event(T0 + HOUR, Kind.CREATED, S.NEW)]
        )
    with pytest.raises(ValueError, match="second 'created'"):
        status_history([Event(T0, Kind.CREATED, S.NEW), Event(T0, Kind.CREATED, S.NEW)])
