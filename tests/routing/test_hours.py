"""Business hours, table-driven: time zones, DST days, midnight-spanning hours, holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from engine.routing.hours import (
    ALWAYS_CLOSED_SINCE,
    NeverOpenError,
    add_business_seconds,
    business_seconds_between,
    closed_period_start,
    is_open,
)
from engine.settings_registry import REGISTRY, BusinessHours

NINE_TO_SIX = [{"start": "09:00", "end": "18:00"}]
WEEKDAYS = {day: NINE_TO_SIX for day in ("mon", "tue", "wed", "thu", "fri")}


def hours(zone: str, week: dict[str, Any], holidays: list[str] | None = None) -> BusinessHours:
    return BusinessHours.model_validate(
        {"time_zone": zone, "week": week, "holidays": holidays or []}
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


SAO_PAULO = hours("America/Sao_Paulo", WEEKDAYS)
BERLIN_NIGHTS = hours(
    "Europe/Berlin",
    {
        day: [{"start": "00:00", "end": "06:00"}, {"start": "22:00", "end": "24:00"}]
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    },
)
BERLIN_EARLY = hours(
    "Europe/Berlin",
    {day: [{"start": "01:00", "end": "04:00"}] for day in ("sat", "sun", "mon")},
)
OLD_SAO_PAULO_MIDNIGHT = hours("America/Sao_Paulo", {"sun": [{"start": "00:00", "end": "02:00"}]})
SPLIT_DAY = hours(
    "Asia/Tokyo",
    {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]},
    holidays=["2026-05-04"],
)
ALL_DAY = hours("UTC", {"sat": [{"start": "00:00", "end": "24:00"}]})


@pytest.mark.parametrize(
    ("hours_", "at", "expected"),
    [
        # São Paulo is UTC-3 (no DST since 2019): 09:00 local is 12:00 UTC.
        (SAO_PAULO, "2026-03-02T11:59:59", False),
        (SAO_PAULO, "2026-03-02T12:00:00", True),
        (SAO_PAULO, "2026-03-02T20:59:59", True),
        (SAO_PAULO, "2026-03-02T21:00:00", False),  # 18:00 local: end is exclusive
        (SAO_PAULO, "2026-03-07T14:00:00", False),  # Saturday
        # Midnight-spanning night shift: Tuesday 23:30 local (CET, UTC+1) and 05:59.
        (BERLIN_NIGHTS, "2026-01-13T22:30:00", True),
        (BERLIN_NIGHTS, "2026-01-13T04:59:00", True),
        (BERLIN_NIGHTS, "2026-01-13T05:00:00", False),
        (BERLIN_NIGHTS, "2026-01-13T12:00:00", False),
        # Berlin springs forward on Sunday 2026-03-29 at 02:00 CET → 03:00 CEST.
        (BERLIN_EARLY, "2026-03-29T00:00:00", True),  # 01:00 CET
        (BERLIN_EARLY, "2026-03-29T00:59:59", True),  # 01:59:59 CET
        (BERLIN_EARLY, "2026-03-29T01:00:00", True),  # 03:00 CEST
        (BERLIN_EARLY, "2026-03-29T02:00:00", False),  # 04:00 CEST
        (BERLIN_EARLY, "2026-03-28T02:59:00", True),  # Saturday 03:59 CET
        (BERLIN_EARLY, "2026-03-28T03:00:00", False),
        # Berlin falls back on Sunday 2026-10-25: 03:00 CEST → 02:00 CET; 04:00 CET = 03:00 UTC.
        (BERLIN_EARLY, "2026-10-24T23:00:00", True),  # 01:00 CEST
        (BERLIN_EARLY, "2026-10-25T02:59:59", True),  # 03:59:59 CET
        (BERLIN_EARLY, "2026-10-25T03:00:00", False),
        # São Paulo's old DST began at midnight (2018-11-04 00:00 → 01:00), so "00:00" opened
        # at the jump: 03:00 UTC, and 02:00 -02 is 04:00 UTC.
        (OLD_SAO_PAULO_MIDNIGHT, "2018-11-04T02:59:59", False),
        (OLD_SAO_PAULO_MIDNIGHT, "2018-11-04T03:00:00", True),
        (OLD_SAO_PAULO_MIDNIGHT, "2018-11-04T03:59:59", True),
        (OLD_SAO_PAULO_MIDNIGHT, "2018-11-04T04:00:00", False),
        # Two intervals a day, a lunch break, and a holiday (Tokyo is UTC+9).
        (SPLIT_DAY, "2026-04-27T02:59:00", True),  # 11:59
        (SPLIT_DAY, "2026-04-27T03:30:00", False),  # 12:30, lunch
        (SPLIT_DAY, "2026-04-27T04:00:00", True),  # 13:00
        (SPLIT_DAY, "2026-05-04T01:00:00", False),  # Monday, but a holiday
        (ALL_DAY, "2026-05-02T00:00:00", True),
        (ALL_DAY, "2026-05-02T23:59:59", True),
        (ALL_DAY, "2026-05-03T00:00:00", False),
        (None, "2026-05-03T03:00:00", True),
    ],
)
def test_is_open(hours_: BusinessHours | None, at: str, expected: bool) -> None:
    assert is_open(hours_, utc(at)) is expected


@pytest.mark.parametrize(
    ("hours_", "at", "expected"),
    [
        (None, "2026-03-07T14:00:00", None),
        (SAO_PAULO, "2026-03-02T15:00:00", None),  # open now
        # Friday 18:00 local through the weekend to Monday 09:00 is one closed period.
        (SAO_PAULO, "2026-03-06T22:00:00", "2026-03-06T21:00:00"),
        (SAO_PAULO, "2026-03-07T14:00:00", "2026-03-06T21:00:00"),
        (SAO_PAULO, "2026-03-08T23:59:00", "2026-03-06T21:00:00"),
        (SAO_PAULO, "2026-03-09T11:59:00", "2026-03-06T21:00:00"),
        # A night shift spanning midnight closes at 06:00 local (05:00 UTC in winter).
        (BERLIN_NIGHTS, "2026-01-13T12:00:00", "2026-01-13T05:00:00"),
        # The lunch break is its own period; a Monday holiday joins the weekend's.
        (SPLIT_DAY, "2026-04-27T03:30:00", "2026-04-27T03:00:00"),
        (SPLIT_DAY, "2026-05-04T01:00:00", "2026-04-27T08:00:00"),
        (SPLIT_DAY, "2026-05-10T01:00:00", "2026-04-27T08:00:00"),
    ],
)
def test_closed_period_start(hours_: BusinessHours | None, at: str, expected: str | None) -> None:
    assert closed_period_start(hours_, utc(at)) == (None if expected is None else utc(expected))


def test_hours_never_open_form_one_closed_period() -> None:
    closed = hours("UTC", {})
    assert closed_period_start(closed, utc("2026-03-02T10:00:00")) == ALWAYS_CLOSED_SINCE
    assert closed_period_start(closed, utc("2026-09-02T10:00:00")) == ALWAYS_CLOSED_SINCE


@pytest.mark.parametrize(
    ("hours_", "start", "end", "seconds"),
    [
        (None, "2026-03-06T20:00:00", "2026-03-06T22:00:00", 7200),
        (SAO_PAULO, "2026-03-06T20:00:00", "2026-03-09T13:00:00", 7200),  # Fri 1 h + Mon 1 h
        (SAO_PAULO, "2026-03-07T10:00:00", "2026-03-08T10:00:00", 0),
        (SAO_PAULO, "2026-03-09T13:00:00", "2026-03-09T12:00:00", 0),
        (SPLIT_DAY, "2026-04-27T00:00:00", "2026-04-27T09:00:00", 7 * 3600),
        (BERLIN_EARLY, "2026-03-28T00:00:00", "2026-03-29T23:00:00", 5 * 3600),  # 3 h + 2 h
        (BERLIN_EARLY, "2026-10-23T00:00:00", "2026-10-26T00:00:00", 7 * 3600),  # 3 h + 4 h
    ],
)
def test_business_seconds_between(
    hours_: BusinessHours | None, start: str, end: str, seconds: int
) -> None:
    assert business_seconds_between(hours_, utc(start), utc(end)) == seconds


@pytest.mark.parametrize(
    ("hours_", "start", "seconds", "expected"),
    [
        (None, "2026-03-06T20:00:00", 3600, "2026-03-06T21:00:00"),
        (SAO_PAULO, "2026-03-06T20:00:00", 7200, "2026-03-09T13:00:00"),
        (SAO_PAULO, "2026-03-07T10:00:00", 60, "2026-03-09T12:01:00"),
        (SPLIT_DAY, "2026-04-27T02:30:00", 3600, "2026-04-27T04:30:00"),  # over lunch
        (SPLIT_DAY, "2026-04-27T07:00:00", 7200, "2026-05-11T01:00:00"),  # over the holiday
        (BERLIN_EARLY, "2026-03-29T00:30:00", 3600, "2026-03-29T01:30:00"),  # across the gap
    ],
)
def test_add_business_seconds(
    hours_: BusinessHours | None, start: str, seconds: int, expected: str
) -> None:
    due = add_business_seconds(hours_, utc(start), seconds)
    assert due == utc(expected)
    assert business_seconds_between(hours_, utc(start), due) == seconds


def test_add_business_seconds_to_hours_never_open_fails_clearly() -> None:
    with pytest.raises(NeverOpenError):
        add_business_seconds(hours("UTC", {}), utc("2026-03-02T10:00:00"), 60)


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"time_zone": "Mars/Olympus", "week": {}}, "time_zone", "IANA"),
        (
            {"time_zone": "UTC", "week": {"mon": [{"start": "18:00", "end": "09:00"}]}},
            "week",
            "before",
        ),
        ({"time_zone": "UTC", "week": {"mon": [NINE_TO_SIX[0]] * 3}}, "week.mon", "at most 2"),
        (
            {"time_zone": "UTC", "week": {"mon": [{"start": "9:00", "end": "18:00"}]}},
            "week",
            "pattern",
        ),
        ({"time_zone": "UTC", "week": {"monday": NINE_TO_SIX}}, "week.monday", "mon"),
        ({"time_zone": "UTC", "week": {}, "holidays": ["2026-02-30"]}, "holidays.0", "date"),
        (
            {
                "time_zone": "UTC",
                "week": {"mon": [NINE_TO_SIX[0], {"start": "17:00", "end": "19:00"}]},
            },
            "",
            "overlap",
        ),
    ],
)
def test_invalid_hours_are_rejected_naming_the_field(
    value: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        REGISTRY["business_hours"].validate(value)
    text = str(caught.value)
    assert field in text and words in text


def test_holidays_round_trip_through_the_setting() -> None:
    setting = REGISTRY["business_hours"]
    value = setting.validate({"time_zone": "UTC", "week": {}, "holidays": ["2026-12-25"]})
    assert value.holidays == [date(2026, 12, 25)]
    assert setting.to_json(value) == {"time_zone": "UTC", "week": {}, "holidays": ["2026-12-25"]}


def test_a_long_span_counts_every_open_day() -> None:
    start = utc("2026-03-02T00:00:00")
    assert business_seconds_between(SAO_PAULO, start, start + timedelta(days=28)) == 20 * 9 * 3600
