"""Open time between instants, computed once per range, agrees with the routing module's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.routing.hours import business_seconds_between
from engine.settings_registry import BusinessHours
from engine.stats.business import OpenTime, measure_open_time, percentile_cont

HOURS = BusinessHours.model_validate(
    {
        "time_zone": "America/New_York",  # with a DST change inside the range below
        "week": {
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "tue": [{"start": "09:00", "end": "18:00"}],
            "wed": [{"start": "00:00", "end": "24:00"}],
            "fri": [{"start": "22:00", "end": "24:00"}],
            "sat": [{"start": "00:00", "end": "02:00"}],
        },
        "holidays": ["2024-03-12"],
    }
)
FIRST = datetime(2024, 3, 1, tzinfo=UTC)
LAST = datetime(2024, 3, 31, tzinfo=UTC)
instants = st.integers(min_value=0, max_value=int((LAST - FIRST).total_seconds())).map(
    lambda s: FIRST + timedelta(seconds=s)
)


@settings(max_examples=200, deadline=None)
@given(instants, instants)
def test_open_time_matches_business_seconds_between(start: datetime, end: datetime) -> None:
    clock = OpenTime(HOURS, FIRST, LAST)

    assert clock.between(start, end) == business_seconds_between(HOURS, start, end)


def test_percentiles_interpolate_like_postgresql() -> None:
    values = [300.0, 600.0, 1200.0, 1800.0]

    assert percentile_cont(values, 0.5) == 900
    assert percentile_cont(values, 0.9) == 1620
    assert percentile_cont([42.0], 0.9) == 42


def test_nothing_measured_gives_no_figures() -> None:
    empty = measure_open_time(HOURS, [], complete=True)

    assert (empty.tickets, empty.average_s, empty.p50_s, empty.p90_s) == (0, None, None, None)
