"""Pacing a batch of sends: tokens per channel before any provider call, penalties after a 429,
and re-sends of the throttled ones spread over their slots."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from adapters.base import OutboundAdapter
from engine.errors import RateLimitedError
from engine.events import ChannelConnection
from engine.ratelimit import RESERVE_HORIZON_MS, Taken, channel_bucket_key
from engine.store.send_batch import ClaimedSend
from pipelines.outbound.send import Failing, Throttled, Verdict

# Throttled sends whose slots fall within this window go back as one batch, at the last slot.
RESEND_WINDOW_MS = 250
SEND_BATCH = 100  # ids per send_messages message


class Bucket(Protocol):
    def take_many(
        self,
        key: str,
        n: int,
        *,
        rate_per_s: float,
        burst: int,
        reserved: bool = False,
        horizon_ms: int = RESERVE_HORIZON_MS,
    ) -> Taken: ...

    def penalize(self, key: str, *, pause_ms: int) -> object: ...


Limits = Callable[[ChannelConnection], tuple[float, int]]


@dataclass(frozen=True)
class Ready:
    """A routed send waiting for its token."""

    job: ClaimedSend
    adapter: OutboundAdapter
    recipient: str


@dataclass(frozen=True)
class Resend:
    """Ids to send again as one batch after `delay_ms`; `reserved_channel_id`: that channel's
    bucket already set their tokens aside."""

    message_ids: list[int]
    delay_ms: int
    reserved_channel_id: int | None = None


def take_tokens(
    ready: Sequence[Ready],
    *,
    bucket: Bucket,
    limits: Limits,
    reserved_channel_id: int | None,
    reserve: bool,
) -> tuple[list[Ready], dict[int, Throttled]]:
    """One take_many per channel: the sends that may go now, and a Throttled verdict for the
    rest (with a reserved slot each when `reserve`, else a wait to ask again after)."""
    by_channel: dict[int, list[Ready]] = {}
    for item in ready:
        by_channel.setdefault(item.job.channel_id, []).append(item)
    go: list[Ready] = []
    throttled: dict[int, Throttled] = {}
    for channel_id, items in by_channel.items():
        channel = items[0].job.channel
        rate, burst = limits(channel)
        taken = bucket.take_many(
            channel_bucket_key(channel),
            len(items),
            rate_per_s=rate,
            burst=burst,
            reserved=channel_id == reserved_channel_id,
            horizon_ms=RESERVE_HORIZON_MS if reserve else 0,
        )
        go += items[: taken.granted]
        step_ms = math.ceil(1000 / rate)
        for position, item in enumerate(items[taken.granted :]):
            if position < len(taken.slots_ms):
                verdict = Throttled(taken.slots_ms[position], reserved=True)
            else:
                # No slot: stagger by position so they do not all come back at once.
                late = position - len(taken.slots_ms)
                verdict = Throttled(taken.hint_ms + late * step_ms, reserved=False)
            throttled[item.job.message_id] = verdict
    return go, throttled


def penalize_rate_limited(
    bucket: Bucket, jobs: Sequence[ClaimedSend], verdicts: Mapping[int, Verdict]
) -> None:
    """A provider 429 slows its channel's bucket (the longest retry-after per channel)."""
    pauses: dict[int, tuple[ChannelConnection, int]] = {}
    for job in jobs:
        verdict = verdicts.get(job.message_id)
        if not isinstance(verdict, Failing) or not isinstance(verdict.error, RateLimitedError):
            continue
        delay_ms = verdict.error.delay_ms or 0
        if delay_ms > pauses.get(job.channel_id, (job.channel, 0))[1]:
            pauses[job.channel_id] = (job.channel, delay_ms)
    for channel, pause_ms in pauses.values():
        bucket.penalize(channel_bucket_key(channel), pause_ms=pause_ms)


def throttled_resends(
    throttled: Sequence[tuple[ClaimedSend, Throttled]], *, batch: int = SEND_BATCH
) -> list[Resend]:
    """Throttled sends back in small batches, each at the last slot of the sends it holds."""
    resends: list[Resend] = []
    open_chunks: dict[tuple[int, bool], tuple[int, list[int], int]] = {}
    for job, verdict in sorted(throttled, key=lambda t: t[1].delay_ms):
        key = (job.channel_id, verdict.reserved)
        first_ms, ids, last_ms = open_chunks.get(key, (verdict.delay_ms, [], 0))
        if ids and (verdict.delay_ms - first_ms > RESEND_WINDOW_MS or len(ids) >= batch):
            resends.append(_chunk(key, ids, last_ms))
            first_ms, ids = verdict.delay_ms, []
        ids.append(job.message_id)
        open_chunks[key] = (first_ms, ids, verdict.delay_ms)
    resends += [_chunk(key, ids, last_ms) for key, (_, ids, last_ms) in open_chunks.items()]
    return resends


def _chunk(key: tuple[int, bool], ids: list[int], delay_ms: int) -> Resend:
    channel_id, reserved = key
    return Resend(ids, delay_ms, reserved_channel_id=channel_id if reserved else None)
