"""Business hours (hub.channels.hours): open or not at an instant, and the next opening, across
midnight, the end of the week and daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.channels.hours import DAYS, BusinessHours, InvalidHours, InvalidTimezone

pytestmark = pytest.mark.unit


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def hours(zone: str, **days: list[list[str]]) -> BusinessHours:
    return BusinessHours.parse(zone, days)


OFFICE = {day: [["09:00", "17:00"]] for day in DAYS[:5]}


def test_istanbul_office_hours() -> None:
    office = hours("Europe/Istanbul", **OFFICE)  # UTC+3 all year
    monday = "2025-06-02T"
    assert not office.is_open(utc(monday + "08:59:59+03:00"))
    assert office.is_open(utc(monday + "09:00:00+03:00"))
    assert office.is_open(utc(monday + "16:59:59+03:00"))
    assert not office.is_open(utc(monday + "17:00:00+03:00"))  # the end is exclusive
    assert office.next_open(utc(monday + "08:00+03:00")) == utc(monday + "06:00Z")
    noon = utc(monday + "12:00+03:00")
    assert office.next_open(noon) == noon  # open now
    assert office.next_open(utc(monday + "18:00+03:00")) == utc("2025-06-03T06:00Z")


def test_friday_evening_waits_for_monday() -> None:
    office = hours("Europe/Istanbul", **OFFICE)
    assert office.next_open(utc("2025-06-06T17:00+03:00")) == utc("2025-06-09T09:00+03:00")
    assert office.next_open(utc("2025-06-08T23:59+03:00")) == utc("2025-06-09T09:00+03:00")


def test_a_night_shift_across_midnight() -> None:
    night = hours("Europe/Istanbul", fri=[["22:00", "24:00"]], sat=[["00:00", "02:00"]])
    assert not night.is_open(utc("2025-06-06T21:59:59+03:00"))
    assert night.is_open(utc("2025-06-06T23:59:59+03:00"))
    assert night.is_open(utc("2025-06-07T00:00+03:00"))
    assert night.is_open(utc("2025-06-07T01:59:59+03:00"))
    assert not night.is_open(utc("2025-06-07T02:00+03:00"))
    assert night.next_open(utc("2025-06-07T02:00+03:00")) == utc("2025-06-13T22:00+03:00")


def test_hours_wrap_around_the_end_of_the_week() -> None:
    weekend = hours("Europe/Istanbul", sun=[["22:00", "24:00"]], mon=[["00:00", "02:00"]])
    assert weekend.is_open(utc("2025-06-08T23:30+03:00"))  # Sunday
    assert weekend.is_open(utc("2025-06-09T01:30+03:00"))  # Monday
    assert not weekend.is_open(utc("2025-06-09T02:00+03:00"))
    # From Monday morning the next opening is six days on, on Sunday night.
    assert weekend.next_open(utc("2025-06-09T02:00+03:00")) == utc("2025-06-15T22:00+03:00")
    saturday = hours("Europe/Istanbul", sat=[["10:00", "12:00"]])
    assert saturday.next_open(utc("2025-06-07T12:00+03:00")) == utc("2025-06-14T10:00+03:00")


def test_berlin_spring_forward() -> None:
    # 2025-03-30, Sunday: at 01:00Z the clocks jump from 02:00 CET to 03:00 CEST.
    early = hours("Europe/Berlin", sun=[["02:30", "04:00"]])
    before = utc("2025-03-30T00:00Z")  # 01:00 CET
    assert early.next_open(before) == utc("2025-03-30T01:00Z")  # at the jump, 03:00 CEST
    assert not early.is_open(utc("2025-03-30T00:59:59Z"))
    assert early.is_open(utc("2025-03-30T01:00Z"))
    # A range wholly inside the skipped hour does not open that day.
    skipped = hours("Europe/Berlin", sun=[["02:10", "02:50"]])
    assert skipped.next_open(before) == utc("2025-04-06T02:10+02:00")
    # A normal day keeps its wall-clock time on both sides of the change.
    office = hours("Europe/Berlin", sat=[["09:00", "17:00"]], sun=[["09:00", "17:00"]])
    assert office.next_open(utc("2025-03-28T20:00Z")) == utc("2025-03-29T08:00Z")  # CET
    assert office.next_open(utc("2025-03-29T20:00Z")) == utc("2025-03-30T07:00Z")  # CEST


def test_berlin_fall_back_opens_the_repeated_hour_twice() -> None:
    # 2025-10-26, Sunday: at 01:00Z the clocks go back from 03:00 CEST to 02:00 CET.
    short = hours("Europe/Berlin", sun=[["02:00", "02:15"]])
    assert short.is_open(utc("2025-10-26T00:10Z"))  # 02:10 CEST
    assert not short.is_open(utc("2025-10-26T00:20Z"))  # 02:20 CEST
    assert short.next_open(utc("2025-10-26T00:20Z")) == utc("2025-10-26T01:00Z")  # 02:00 CET
    assert short.is_open(utc("2025-10-26T01:10Z"))
    assert not short.is_open(utc("2025-10-26T01:15Z"))
    first = short.next_open(utc("2025-10-25T12:00Z"))
    assert first == utc("2025-10-26T00:00Z")  # the first 02:00, still CEST


def test_new_york_weekend_across_the_start_of_dst() -> None:
    office = hours("America/New_York", **OFFICE)
    friday_evening = utc("2025-03-07T17:30-05:00")  # EST
    assert office.next_open(friday_evening) == utc("2025-03-10T13:00Z")  # 09:00 EDT
    assert office.next_open(utc("2025-11-01T12:00Z")) == utc("2025-11-03T14:00Z")  # back to EST


def test_no_ranges_never_open() -> None:
    closed = hours("UTC")
    assert not closed.is_open(utc("2025-06-02T12:00Z"))
    assert closed.next_open(utc("2025-06-02T12:00Z")) is None


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        hours("UTC", **OFFICE).is_open(datetime(2025, 6, 2, 12))


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime", "x" * 80]
)
def test_unknown_time_zones_are_refused(zone: str) -> None:
    with pytest.raises(InvalidTimezone) as caught:
        hours(zone)
    assert caught.value.code == "invalid_timezone" and caught.value.status == 400


@pytest.mark.parametrize(
    "ranges",
    [
        [["17:00", "09:00"]],
        [["10:00", "10:00"]],
        [["9:00", "10:00"]],
        [["24:00", "24:00"]],
        [["25:00", "26:00"]],
        [["12:60", "13:00"]],
        [["09:00"]],
        [["09:00", "10:00", "11:00"]],
        [["noon", "13:00"]],
    ],
)
def test_bad_ranges_are_refused(ranges: list[list[str]]) -> None:
    with pytest.raises(InvalidHours) as caught:
        hours("UTC", mon=ranges)
    assert caught.value.code == "invalid_hours" and caught.value.status == 400


def test_unknown_days_are_refused() -> None:
    with pytest.raises(InvalidHours):
        BusinessHours.parse("UTC", {"funday": [["09:00", "10:00"]]})


QUARTER = timedelta(minutes=15)
quarters = st.integers(min_value=0, max_value=96).map(lambda q: f"{q // 4:02d}:{q % 4 * 15:02d}")
day_ranges = st.lists(st.tuples(quarters, quarters), max_size=2).map(
    lambda pairs: [[a, b] for a, b in pairs if a < b and a != "24:00"]
)


@settings(max_examples=60, deadline=None)
@given(
    week=st.fixed_dictionaries({}, optional={day: day_ranges for day in DAYS}),
    base=st.sampled_from(["2025-03-06T00:00Z", "2025-10-20T00:00Z"]),
    start=st.integers(min_value=0, max_value=26 * 96),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Europe/Istanbul"]),
)
def test_next_open_is_the_first_open_instant(
    week: dict[str, list[list[str]]], base: str, start: int, zone: str
) -> None:
    """Every opening falls on a quarter hour of UTC (these zones' offsets and changes are whole
    hours), so walking quarter by quarter from `at` finds the same first open instant. The
    starts span the spring and autumn changes of 2025 in New York and Berlin."""
    business = BusinessHours.parse(zone, week)
    at = utc(base) + start * QUARTER
    found = business.next_open(at)
    walked = next(
        (at + i * QUARTER for i in range(9 * 96) if business.is_open(at + i * QUARTER)), None
    )
    assert found == walked
