"""Durations counted in business hours only: the open time between two instants, per ticket."""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.settings import get_settings
from engine.routing.hours import Span, open_spans
from engine.settings_registry import BusinessHours
from engine.stats.period import Durations


class BusinessDurations(Durations):
    """Seconds of open time; None when no ticket was measured."""

    complete: bool  # False: only the most recent tickets were measured (see engine.stats.timing)


async def get_business_hours(conn: AsyncConnection, tenant_id: int) -> BusinessHours | None:
    """The tenant's `business_hours` setting in force; None when always open."""
    (setting,) = await get_settings(conn, tenant_id, ["business_hours"])
    if setting.value is None:
        return None
    try:
        return BusinessHours.model_validate(setting.value)
    except ValidationError:  # a stored value from an older shape: treated as not set
        return None


class OpenTime:
    """Open seconds between instants, from the open spans computed once for a whole range.

    Equivalent to engine.routing.hours.business_seconds_between, but two binary searches per
    pair instead of walking every day, so thousands of tickets take milliseconds.
    """

    def __init__(self, hours: BusinessHours, first: datetime, last: datetime) -> None:
        zone = ZoneInfo(hours.time_zone)
        first_day = first.astimezone(zone).date() - timedelta(days=1)
        last_day = last.astimezone(zone).date() + timedelta(days=1)
        self._spans: list[Span] = open_spans(hours, first_day, last_day)
        self._starts = [s for s, _ in self._spans]
        lengths = [(e - s).total_seconds() for s, e in self._spans]
        self._before = [0.0, *accumulate(lengths)]  # open seconds before span i

    def _open_before(self, at: datetime) -> float:
        """Open seconds from the first span's start to `at`."""
        i = bisect_left(self._starts, at)  # spans 0..i-1 start before `at`
        if i == 0:
            return 0.0
        start, end = self._spans[i - 1]
        return self._before[i - 1] + (min(at, end) - start).total_seconds()

    def between(self, start: datetime, end: datetime) -> float:
        if end <= start:
            return 0.0
        return self._open_before(end) - self._open_before(start)


def percentile_cont(ordered: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measure_open_time(
    hours: BusinessHours, pairs: list[tuple[datetime, datetime]], *, complete: bool
) -> BusinessDurations:
    """Average, median and p90 of the open time of each (start, end) pair."""
    if not pairs:
        return BusinessDurations(
            tickets=0, average_s=None, p50_s=None, p90_s=None, complete=complete
        )
    clock = OpenTime(hours, min(s for s, _ in pairs), max(e for _, e in pairs))
    seconds = sorted(clock.between(start, end) for start, end in pairs)
    return BusinessDurations(
        tickets=len(seconds),
        average_s=sum(seconds) / len(seconds),
        p50_s=percentile_cont(seconds, 0.5),
        p90_s=percentile_cont(seconds, 0.9),
        complete=complete,
    )
