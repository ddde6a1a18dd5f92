"""Messages processed and failed per minute, from the counters QueueCounters keeps in Redis."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis

from engine.ops import keys
from engine.ops.models import MinuteCount

HISTORY_MINUTES = 10


async def minute_history(
    client: aioredis.Redis,
    prefix: str,
    queues: Sequence[str],
    *,
    now_s: float,
    minutes: int = HISTORY_MINUTES,
) -> dict[str, tuple[MinuteCount, ...]]:
    """Per queue, the last `minutes` minutes, oldest first, the current (partial) one last."""
    current = keys.minute_of(now_s)
    span = range(current - minutes + 1, current + 1)
    pipe = client.pipeline(transaction=False)
    for q in queues:
        for minute in span:
            pipe.hmget(keys.counter_key(prefix, q, minute), ["processed", "failed"])
    raw = await pipe.execute()
    out: dict[str, tuple[MinuteCount, ...]] = {}
    for i, q in enumerate(queues):
        rows = raw[i * minutes : (i + 1) * minutes]
        out[q] = tuple(
            MinuteCount(
                minute=datetime.fromtimestamp(minute * 60, UTC),
                processed=int(processed or 0),
                failed=int(failed or 0),
            )
            for minute, (processed, failed) in zip(span, rows, strict=True)
        )
    return out


def per_minute(history: Sequence[MinuteCount], *, now_s: float) -> tuple[int, int]:
    """(processed, failed) over the trailing 60 seconds: the current minute plus the share of
    the previous minute still inside the window (the usual sliding-window estimate)."""
    if not history:
        return 0, 0
    current = history[-1]
    previous = (
        history[-2]
        if len(history) > 1
        else MinuteCount(minute=current.minute, processed=0, failed=0)
    )
    weight = 1 - (now_s % 60) / 60
    return (
        round(current.processed + previous.processed * weight),
        round(current.failed + previous.failed * weight),
    )
