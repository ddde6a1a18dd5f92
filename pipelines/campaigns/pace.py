"""Pace: how many recipients are due at an instant, when the next one is, and calendar edges.

Pure functions over a clock passed in, so the pace, send windows and quota days can be tested
at any instant in any time zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

# A tick catches up at most this far back: a tick that comes late (paused, a slow worker, a
# window that just opened) sends about one tick's worth, never a burst of the backlog.
CATCH_UP_S = 1.0
# A campaign may use this share of its channel's rate, leaving room for agents' replies.
CHANNEL_SHARE = 0.8


@dataclass(frozen=True)
class Slots:
    """`count` sends are due now: the first at `first_at`, then one every `interval_ms`."""

    count: int
    first_at: datetime
    interval_ms: float

    def next_after(self, sent: int) -> datetime:
        """When the next send is due once `sent` of the due sends were made."""
        return self.first_at + timedelta(milliseconds=self.interval_ms * sent)


def send_interval_ms(
    *, rate_per_min: int | None, delay_ms: int, channel_rate_per_s: float
) -> float:
    """Milliseconds between two sends: the slowest of the campaign's rate, its delay between
    sends and its share of the channel's token bucket rate."""
    candidates = [float(delay_ms), 1000.0 / (channel_rate_per_s * CHANNEL_SHARE)]
    if rate_per_min:
        candidates.append(60_000.0 / rate_per_min)
    return max(candidates)


def due_slots(
    now: datetime, next_send_at: datetime | None, interval_ms: float, *, limit: int
) -> Slots:
    """The sends due at `now` when the next one was due at `next_send_at` (None: now).

    One slot at next_send_at and one every interval after it up to now, from at most
    CATCH_UP_S back, capped at `limit`. Zero when next_send_at is still ahead.
    """
    first = now if next_send_at is None else max(next_send_at, now - timedelta(seconds=CATCH_UP_S))
    if first > now:
        return Slots(0, first, interval_ms)
    elapsed_ms = (now - first) / timedelta(milliseconds=1)
    count = min(limit, math.floor(elapsed_ms / interval_ms) + 1)
    return Slots(max(count, 0), first, interval_ms)


def local_day_start(now: datetime, tz: tzinfo) -> datetime:
    """The instant today began on the wall clock of `tz` (UTC)."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(UTC)


def next_local_day(now: datetime, tz: tzinfo) -> datetime:
    """The instant tomorrow begins on the wall clock of `tz` (UTC).

    Computed from the calendar date, not now + 24 h, so a DST change day is 23 or 25 hours.
    """
    local = now.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
