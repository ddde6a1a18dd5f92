"""Business hours as instants: open or not, when a closed period began, business time spans.

Pure functions over `BusinessHours` (None means always open), plus `effective_hours`, the one
reader of which hours apply to a queue. Intervals are wall-clock times in
the hours' time zone, turned into UTC instants per local date, so DST days come out right: a
wall time skipped by a spring-forward gap starts at the gap's end, and a wall time repeated by a
fall-back is opened at its first occurrence and closed at its last.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, text

from engine.settings_registry import BusinessHours, Weekday
from engine.store.settings import get_setting

log = logging.getLogger(__name__)

SEARCH_BACK_DAYS = 400
SEARCH_AHEAD_DAYS = 400
_WINDOW_DAYS = 14
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The closed period of hours that were not open once in the search range.
ALWAYS_CLOSED_SINCE = datetime(1970, 1, 1, tzinfo=UTC)

Span = tuple[datetime, datetime]


class NeverOpenError(ValueError):
    """The business hours have no open time within the search range."""


def _wall_to_utc(day: date, clock: str, tz: ZoneInfo, *, fold: int) -> datetime:
    """The UTC instant of local `day` at "HH:MM" (24:00 is the next day's midnight)."""
    if clock == "24:00":
        wall = datetime.combine(day + timedelta(days=1), time(0, 0))
    else:
        wall = datetime.combine(day, time.fromisoformat(clock))
    local = wall.replace(tzinfo=tz, fold=fold)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    return _gap_end(wall, tz)


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose wall time is at or after `wall`, a time a DST gap skipped."""
    early = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    late = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    low, high = sorted((early, late))
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high


def _day_spans(hours: BusinessHours, tz: ZoneInfo, day: date) -> Iterator[Span]:
    if day in hours.holidays:
        return
    for interval in sorted(hours.week.get(_WEEKDAYS[day.weekday()], []), key=lambda i: i.start):
        start = _wall_to_utc(day, interval.start, tz, fold=0)
        end = _wall_to_utc(day, interval.end, tz, fold=1)
        if end > start:
            yield start, end


def open_spans(hours: BusinessHours, first: date, last: date) -> list[Span]:
    """Merged open spans (UTC) of the local dates `first`..`last`, in order."""
    tz = ZoneInfo(hours.time_zone)
    merged: list[Span] = []
    day = first
    while day <= last:
        for start, end in _day_spans(hours, tz, day):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        day += timedelta(days=1)
    return merged


def _local_date(hours: BusinessHours, at: datetime) -> date:
    return at.astimezone(ZoneInfo(hours.time_zone)).date()


def is_open(hours: BusinessHours | None, at: datetime) -> bool:
    """Whether `at` (aware) falls within business hours."""
    if hours is None:
        return True
    day = _local_date(hours, at)
    spans = open_spans(hours, day - timedelta(days=1), day + timedelta(days=1))
    return any(start <= at < end for start, end in spans)


def closed_period_start(hours: BusinessHours | None, at: datetime) -> datetime | None:
    """When the closed period around `at` began (UTC): the end of the last open span.

    None while open. Closed nights, weekends and holidays in a row are one period. Hours never
    open in the last SEARCH_BACK_DAYS give ALWAYS_CLOSED_SINCE, so the answer stays stable.
    """
    if hours is None or is_open(hours, at):
        return None
    last = _local_date(hours, at) + timedelta(days=1)
    searched = 0
    while searched < SEARCH_BACK_DAYS:
        first = last - timedelta(days=_WINDOW_DAYS)
        ends = [end for _start, end in open_spans(hours, first, last) if end <= at]
        if ends:
            return max(ends).astimezone(UTC)
        last = first - timedelta(days=1)
        searched += _WINDOW_DAYS + 1
    return ALWAYS_CLOSED_SINCE


def business_seconds_between(hours: BusinessHours | None, start: datetime, end: datetime) -> float:
    """Open time between two instants, in seconds (wall-clock time when `hours` is None).

    Zero when `end` is not after `start`.
    """
    if end <= start:
        return 0.0
    if hours is None:
        return (end - start).total_seconds()
    first = _local_date(hours, start) - timedelta(days=1)
    last = _local_date(hours, end) + timedelta(days=1)
    total = 0.0
    for span_start, span_end in open_spans(hours, first, last):
        overlap = min(span_end, end) - max(span_start, start)
        if overlap > timedelta(0):
            total += overlap.total_seconds()
    return total


def add_business_seconds(hours: BusinessHours | None, start: datetime, seconds: float) -> datetime:
    """The instant when `seconds` of open time have passed since `start` (UTC).

    Raises NeverOpenError when the hours have not provided that much open time within
    SEARCH_AHEAD_DAYS of `start`.
    """
    if hours is None or seconds <= 0:
        return (start + timedelta(seconds=max(seconds, 0))).astimezone(UTC)
    remaining = timedelta(seconds=seconds)
    first = _local_date(hours, start) - timedelta(days=1)
    while first <= _local_date(hours, start) + timedelta(days=SEARCH_AHEAD_DAYS):
        last = first + timedelta(days=_WINDOW_DAYS)
        for span_start, span_end in open_spans(hours, first, last):
            begin = max(span_start, start)
            if span_end <= begin:
                continue
            if begin + remaining <= span_end:
                return (begin + remaining).astimezone(UTC)
            remaining -= span_end - begin
        first = last + timedelta(days=1)
    raise NeverOpenError(f"business hours give less than {seconds} s of open time")


_QUEUE_HOURS = text("SELECT business_hours FROM queues WHERE tenant_id = :t AND id = :id")


def effective_hours(
    conn: Connection, *, tenant_id: int, queue_id: int | None
) -> BusinessHours | None:
    """The queue's own hours when it has some, else the tenant's `business_hours` setting.

    Runs inside the caller's tenant transaction. Stored queue hours that no longer validate
    are logged and skipped in favour of the tenant's.
    """
    if queue_id is not None:
        stored = conn.execute(_QUEUE_HOURS, {"t": tenant_id, "id": queue_id}).scalar_one_or_none()
        if stored:
            try:
                return BusinessHours.model_validate(stored)
            except ValidationError:
                log.warning("stored queue hours invalid", extra={"queue_id": queue_id})
    hours: BusinessHours | None = get_setting(conn, tenant_id=tenant_id, key="business_hours")
    return hours
