"""Periods of local days: defaults, limits and their UTC bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.stats.period import PeriodError, make_period

TODAY = date(2024, 5, 31)


def test_by_default_the_last_30_days_including_today() -> None:
    period = make_period(None, None, "UTC", today=TODAY)

    assert (period.first, period.last) == (date(2024, 5, 2), TODAY)


def test_from_alone_runs_30_days_but_not_past_today() -> None:
    assert make_period(date(2024, 3, 1), None, "UTC", today=TODAY).last == date(2024, 3, 30)
    assert make_period(date(2024, 5, 20), None, "UTC", today=TODAY).last == TODAY


def test_bounds_are_local_midnights_across_a_dst_change() -> None:
    # New York moved its clocks forward on 2024-03-10.
    period = make_period(date(2024, 3, 9), date(2024, 3, 10), "America/New_York", today=TODAY)

    assert period.start.astimezone(UTC) == datetime(2024, 3, 9, 5, tzinfo=UTC)
    assert period.end.astimezone(UTC) == datetime(2024, 3, 11, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        (date(2024, 5, 2), date(2024, 5, 1), "to"),
        (date(2023, 5, 1), date(2024, 5, 1), "to"),  # 367 days
        (date(2024, 6, 2), None, "from"),  # after today
        (date(1, 1, 1), date(1, 1, 1), "from"),  # arithmetic near the ends of the calendar
        (date(2024, 5, 1), date(9999, 12, 31), "to"),
    ],
)
def test_impossible_periods_name_the_field(first: date, last: date | None, field: str) -> None:
    with pytest.raises(PeriodError) as caught:
        make_period(first, last, "UTC", today=TODAY)

    assert caught.value.field == field


def test_a_whole_leap_year_is_allowed() -> None:
    period = make_period(date(2024, 1, 1), date(2024, 12, 31), "UTC", today=TODAY)

    assert (period.last - period.first).days + 1 == 366
