"""Daily send windows in a local time zone: open or not at an instant, and when next open."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. America/Sao_Paulo); ValueError naming it otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone such as America/Sao_Paulo") from None


def _check_zone(name: str) -> str:
    zone(name)
    return name


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_check_zone)]


def _local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("is a local time of day: give it without a UTC offset")
    return value


def _weekday_set(days: list[Weekday]) -> list[Weekday]:
    """Unique, in calendar order, so two equal windows compare and store equal."""
    return [d for d in WEEKDAYS if d in days]


LocalTime = Annotated[time, AfterValidator(_local_time)]


class SendWindow(BaseModel):
    """Hours of the day, on some days of the week, in which a campaign may send.

    `end` before `start` spans midnight: 22:00–06:00 opened on a Friday closes on Saturday
    morning, so that night belongs to Friday. `start` is inclusive and `end` exclusive.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: LocalTime
    end: LocalTime
    days: Annotated[
        list[Weekday], Field(min_length=1, max_length=7), AfterValidator(_weekday_set)
    ] = Field(default_factory=lambda: list(WEEKDAYS))

    @model_validator(mode="after")
    def _not_empty(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError("start and end must differ; leave the window out to send at any hour")
        return self

    @property
    def spans_midnight(self) -> bool:
        return self.end < self.start

    def _day_on(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.days

    def is_open(self, at_utc: datetime, tz: tzinfo) -> bool:
        """Whether a send at `at_utc` falls inside the window, read on the wall clock of `tz`."""
        local = _aware(at_utc).astimezone(tz)
        now, today = local.time().replace(tzinfo=None), local.date()
        if not self.spans_midnight:
            return self._day_on(today) and self.start <= now < self.end
        if now >= self.start:
            return self._day_on(today)
        return now < self.end and self._day_on(today - timedelta(days=1))

    def next_open(self, at_utc: datetime, tz: tzinfo) -> datetime:
        """`at_utc` if the window is open then, else the UTC instant it next opens.

        An opening time that a DST jump skips opens at the first instant after the jump; one
        that occurs twice (clocks going back) opens at its first occurrence. A window lying
        wholly inside a skipped hour does not open that day.
        """
        at = _aware(at_utc).astimezone(UTC)
        if self.is_open(at, tz):
            return at
        first = at.astimezone(tz).date()
        for offset in range(-1, 9):
            day = first + timedelta(days=offset)
            if not self._day_on(day):
                continue
            opens = self._opening(day, tz)
            if opens is not None and opens > at:
                return opens
        raise AssertionError("a window open on at least one weekday opens within 8 days")

    def _opening(self, day: date, tz: tzinfo) -> datetime | None:
        """The UTC instant the window opens on `day`, or None if it never does that day."""
        wall = datetime.combine(day, self.start, tzinfo=tz)
        first, second = wall.astimezone(UTC), wall.replace(fold=1).astimezone(UTC)
        if not self.is_open(first, tz):
            return None
        if second >= first:  # an ordinary or a repeated wall time: its first occurrence
            return first
        # Skipped by a DST jump: `second` falls before the jump, `first` after it; the
        # window opens at the jump itself, found by bisection to the microsecond.
        closed, open_ = second, first
        while open_ - closed > _TICK:
            middle = closed + (open_ - closed) / 2
            if self.is_open(middle, tz):
                open_ = middle
            else:
                closed = middle
        return open_


_TICK = timedelta(microseconds=1)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no instant; pass an aware (UTC) one")
    return value
