"""Campaign pace and calendar edges at chosen instants (a controllable clock), in any zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from engine.campaigns import SendWindow, zone
from pipelines.campaigns.pace import (
    CHANNEL_SHARE,
    due_slots,
    local_day_start,
    next_local_day,
    send_interval_ms,
)

T = datetime(2025, 3, 14, 15, 0, 0, tzinfo=UTC)  # a Friday


def test_the_slowest_of_rate_delay_and_channel_sets_the_interval() -> None:
    whatsapp = 80.0
    channel_ms = 1000 / (whatsapp * CHANNEL_SHARE)
    assert send_interval_ms(rate_per_min=None, delay_ms=0, channel_rate_per_s=whatsapp) == (
        pytest.approx(channel_ms)
    )
    assert send_interval_ms(rate_per_min=60, delay_ms=0, channel_rate_per_s=whatsapp) == 1000
    assert send_interval_ms(rate_per_min=60, delay_ms=2500, channel_rate_per_s=whatsapp) == 2500
    # An SMS long code sends one a second: a campaign asking for 600/min still gets ~0.8/s.
    assert send_interval_ms(rate_per_min=600, delay_ms=0, channel_rate_per_s=1.0) == 1250


def test_first_tick_sends_one_and_the_next_is_one_interval_later() -> None:
    slots = due_slots(T, None, 1000, limit=500)
    assert (slots.count, slots.next_after(1)) == (1, T + timedelta(seconds=1))


def test_a_tick_claims_what_became_due_since_the_last_one() -> None:
    slots = due_slots(T, T - timedelta(milliseconds=900), 100, limit=500)
    assert slots.count == 10  # due at -900, -800, … , 0 ms
    assert slots.next_after(10) == T + timedelta(milliseconds=100)


def test_not_due_before_next_send_at() -> None:
    assert due_slots(T, T + timedelta(milliseconds=1), 100, limit=500).count == 0


def test_a_late_tick_never_sends_the_backlog_in_a_burst() -> None:
    # Paused for an hour at 10/s: resuming sends about a second's worth, not 36 000.
    slots = due_slots(T, T - timedelta(hours=1), 100, limit=500)
    assert slots.count == 11
    assert slots.first_at == T - timedelta(seconds=1)


def test_the_claim_limit_caps_a_tick() -> None:
    assert due_slots(T, T - timedelta(seconds=1), 1, limit=500).count == 500


@pytest.mark.parametrize(
    ("tz", "local_midnight_utc"),
    [
        ("UTC", datetime(2025, 3, 15, 0, 0, tzinfo=UTC)),
        ("America/Sao_Paulo", datetime(2025, 3, 15, 3, 0, tzinfo=UTC)),  # UTC-3
        ("Asia/Tokyo", datetime(2025, 3, 14, 15, 0, tzinfo=UTC)),  # UTC+9: 00:00 on the 15th
    ],
)
def test_the_quota_day_turns_at_local_midnight(tz: str, local_midnight_utc: datetime) -> None:
    at = T - timedelta(seconds=1)  # 14:59:59 UTC
    assert next_local_day(at, zone(tz)) == local_midnight_utc
    assert local_day_start(at, zone(tz)) == local_midnight_utc - timedelta(days=1)


def test_a_quota_day_across_a_dst_change_is_23_hours() -> None:
    # New York springs forward on 2025-03-09: that local day has 23 hours.
    ny = zone("America/New_York")
    saturday_noon = datetime(2025, 3, 8, 17, 0, tzinfo=UTC)
    start_of_sunday = next_local_day(saturday_noon, ny)
    assert start_of_sunday == datetime(2025, 3, 9, 5, 0, tzinfo=UTC)  # EST midnight
    assert next_local_day(start_of_sunday, ny) - start_of_sunday == timedelta(hours=23)


WORKDAYS = SendWindow(start=time(9), end=time(18), days=["mon", "tue", "wed", "thu", "fri"])


@pytest.mark.parametrize(
    ("tz", "opens_utc", "closes_utc"),
    [
        ("America/Sao_Paulo", datetime(2025, 3, 14, 12, 0, tzinfo=UTC), T + timedelta(hours=6)),
        ("Europe/Berlin", datetime(2025, 3, 14, 8, 0, tzinfo=UTC), T + timedelta(hours=2)),
        (
            "Asia/Tokyo",
            datetime(2025, 3, 14, 0, 0, tzinfo=UTC),
            datetime(2025, 3, 14, 9, 0, tzinfo=UTC),
        ),
    ],
)
def test_send_window_boundaries_in_the_campaigns_zone(
    tz: str, opens_utc: datetime, closes_utc: datetime
) -> None:
    here = zone(tz)
    assert not WORKDAYS.is_open(opens_utc - timedelta(microseconds=1), here)
    assert WORKDAYS.is_open(opens_utc, here)  # start inclusive
    assert WORKDAYS.is_open(closes_utc - timedelta(microseconds=1), here)
    assert not WORKDAYS.is_open(closes_utc, here)  # end exclusive


def test_friday_evening_waits_for_monday_morning() -> None:
    sao_paulo = zone("America/Sao_Paulo")
    friday_evening = datetime(2025, 3, 14, 22, 0, tzinfo=UTC)  # 19:00 local
    assert WORKDAYS.next_open(friday_evening, sao_paulo) == datetime(2025, 3, 17, 12, 0, tzinfo=UTC)
