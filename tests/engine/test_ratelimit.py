"""Token buckets on the real Redis: bursts, refill, 429 penalties, atomicity and expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from engine.events import ChannelConfig, ChannelConnection, ChannelType
from engine.ratelimit import DEFAULT_LIMITS, TokenBucket, channel_bucket_key, limits_for

T0 = 1_700_000_000_000  # a fixed "now" in ms; tests move time forward by hand


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def bucket(client: redis.Redis, queue_prefix: str) -> TokenBucket:
    return TokenBucket(client, queue_prefix)


def test_burst_then_wait_is_one_token_interval(bucket: TokenBucket) -> None:
    taken = [bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0) for _ in range(5)]
    assert taken == [0, 0, 0, 0, 0]
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0) == 100
    # asking again does not consume anything: the wait stays the same
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0) == 100


def test_refill_over_time_never_exceeds_burst(bucket: TokenBucket) -> None:
    for _ in range(5):
        bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0)
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0 + 40) == 60
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0 + 100) == 0
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0 + 100) == 100
    # a long idle spell refills to the burst, not beyond
    later = T0 + 60_000
    assert [bucket.take("ch", rate_per_s=10, burst=5, now_ms=later) for _ in range(6)] == [
        0,
        0,
        0,
        0,
        0,
        100,
    ]


def test_buckets_are_independent(bucket: TokenBucket) -> None:
    assert bucket.take("a", rate_per_s=1, burst=1, now_ms=T0) == 0
    assert bucket.take("a", rate_per_s=1, burst=1, now_ms=T0) == 1000
    assert bucket.take("b", rate_per_s=1, burst=1, now_ms=T0) == 0


def test_penalize_blocks_until_the_pause_ends(bucket: TokenBucket) -> None:
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0) == 0
    assert bucket.penalize("ch", pause_ms=2_000, cooling_ms=0, now_ms=T0) == 2_000
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0) == 2_000
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0 + 1_500) == 500
    # the pause is over: the waiting send goes, the next waits one ordinary interval
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0 + 2_000) == 0
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0 + 2_000) == 100


def test_penalize_halves_the_rate_while_cooling(bucket: TokenBucket) -> None:
    bucket.penalize("ch", pause_ms=1_000, cooling_ms=10_000, now_ms=T0)
    end = T0 + 1_000
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=end) == 0
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=end) == 200
    # 2 s into the cooling period at 5 tokens/s: the bucket is full again (5 tokens)
    assert [bucket.take("ch", rate_per_s=10, burst=5, now_ms=end + 2_000) for _ in range(6)] == [
        0,
        0,
        0,
        0,
        0,
        200,
    ]
    # a wait that straddles the end of cooling: 100 ms at half rate, then full rate
    near_end = end + 10_000 - 100
    for _ in range(5):
        bucket.take("ch", rate_per_s=10, burst=5, now_ms=near_end)
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=near_end) == 150
    # after cooling the full rate is back
    after = end + 20_000
    for _ in range(5):
        bucket.take("ch", rate_per_s=10, burst=5, now_ms=after)
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=after) == 100


def test_overlapping_penalties_never_shorten_the_pause(bucket: TokenBucket) -> None:
    bucket.penalize("ch", pause_ms=5_000, now_ms=T0)
    assert bucket.penalize("ch", pause_ms=1_000, now_ms=T0 + 1_000) == 4_000
    assert bucket.take("ch", rate_per_s=10, burst=5, now_ms=T0 + 1_000) == 4_000


def test_server_time_is_used_without_now(bucket: TokenBucket) -> None:
    assert bucket.take("ch", rate_per_s=2, burst=1) == 0
    wait = bucket.take("ch", rate_per_s=2, burst=1)
    assert 300 <= wait <= 500
    assert bucket.penalize("ch", pause_ms=3_000) == 3_000
    assert 2_000 <= bucket.take("ch", rate_per_s=2, burst=1) <= 3_000


def test_concurrent_takes_hand_out_at_most_burst_plus_refill(bucket: TokenBucket) -> None:
    rate, burst = 0.5, 20
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = sum(1 for _ in range(50) if bucket.take("hot", rate_per_s=rate, burst=burst) == 0)
        with lock:
            granted.append(mine)

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed_s = time.monotonic() - began
    assert len(granted) == 8
    assert burst <= sum(granted) <= burst + int(rate * elapsed_s) + 1


def test_idle_keys_expire(bucket: TokenBucket, client: redis.Redis) -> None:
    bucket.take("ch", rate_per_s=10, burst=5)
    ttl = client.pttl(bucket.key("ch"))
    # an empty bucket refills in 500 ms; the key lives about that long plus a margin
    assert 0 < ttl <= 500 + 1_000
    bucket.penalize("ch", pause_ms=2_000, cooling_ms=0)
    assert 2_000 < client.pttl(bucket.key("ch")) <= 2_000 + 500 + 1_000


def test_a_penalty_on_an_unknown_bucket_expires_too(
    bucket: TokenBucket, client: redis.Redis
) -> None:
    bucket.penalize("new", pause_ms=1_000, cooling_ms=5_000)
    assert 0 < client.pttl(bucket.key("new")) <= 1_000 + 5_000 + 1_000


def test_bad_arguments_are_refused(bucket: TokenBucket) -> None:
    with pytest.raises(ValueError):
        bucket.take("ch", rate_per_s=0, burst=5)
    with pytest.raises(ValueError):
        bucket.take("ch", rate_per_s=1, burst=0)
    with pytest.raises(ValueError):
        bucket.penalize("ch", pause_ms=-1)


def test_fakeredis_runs_the_same_script() -> None:
    pytest.importorskip("lupa")  # fakeredis needs lupa for EVAL
    import fakeredis

    fake = TokenBucket(fakeredis.FakeRedis(), "fake")
    assert [fake.take("ch", rate_per_s=10, burst=2, now_ms=T0) for _ in range(3)] == [0, 0, 100]
    assert fake.take("ch", rate_per_s=10, burst=2) == 0  # server time: long after T0
    assert fake.penalize("ch", pause_ms=700) == 700


def _channel(type: ChannelType, config: ChannelConfig | None = None) -> ChannelConnection:
    return ChannelConnection(
        id=7, tenant_id=1, type=type, external_id="x", config=config or ChannelConfig()
    )


def test_limits_default_per_channel_type() -> None:
    assert set(DEFAULT_LIMITS) == set(ChannelType)
    assert limits_for(_channel(ChannelType.WHATSAPP)) == (80.0, 80)
    assert limits_for(_channel(ChannelType.SMS)) == (1.0, 1)


def test_limits_follow_the_channel_config() -> None:
    both = ChannelConfig(rate_per_s=3.5, burst=10)
    assert limits_for(_channel(ChannelType.TELEGRAM, both)) == (3.5, 10)
    assert limits_for(_channel(ChannelType.TELEGRAM, ChannelConfig(rate_per_s=2.5))) == (2.5, 3)
    assert limits_for(_channel(ChannelType.EMAIL, ChannelConfig(burst=1))) == (5.0, 1)
    assert channel_bucket_key(_channel(ChannelType.EMAIL)) == "channel:7"
