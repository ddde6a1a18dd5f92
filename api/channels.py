"""A short-lived cache of channels for the webhook hot path, plus rejection counters."""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import partial

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.db import async_system_tx
from engine.store.channels import Channel, get_channel_async


class ChannelDirectory:
    """Channel by id, cached for `ttl_s` so a webhook burst does not re-read the same row.

    A disabled or edited channel takes effect within ttl_s. When an entry expires under
    load, one query refreshes it and the concurrent requests for that channel wait on it,
    rather than each reading the row (and each taking a pooled connection).
    """

    def __init__(self, db: AsyncEngine, *, ttl_s: float = 5.0) -> None:
        self._db = db
        self._ttl_s = ttl_s
        self._cache: dict[int, tuple[float, Channel | None]] = {}
        self._loading: dict[int, asyncio.Future[Channel | None]] = {}

    async def get(self, channel_id: int) -> Channel | None:
        hit = self._cache.get(channel_id)
        if hit is not None and time.monotonic() - hit[0] < self._ttl_s:
            return hit[1]
        loading = self._loading.get(channel_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(channel_id))
            self._loading[channel_id] = loading
            loading.add_done_callback(partial(self._loaded, channel_id))
        # Shielded: a caller that goes away does not cancel the others' lookup.
        return await asyncio.shield(loading)

    def _loaded(self, channel_id: int, loading: asyncio.Future[Channel | None]) -> None:
        self._loading.pop(channel_id, None)
        if not loading.cancelled():
            loading.exception()  # seen: its waiters, if any are left, have it raised

    async def _load(self, channel_id: int) -> Channel | None:
        loaded_at = time.monotonic()
        async with async_system_tx(self._db) as conn:
            channel = await get_channel_async(conn, channel_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[channel_id] = (loaded_at, channel)
        return channel


class RejectionCounters:
    """Counts of webhooks turned away, by channel type and reason, in one Redis hash.

    Visible to operators from any process (`flowdesk ingest stats`); never carries payloads.
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str) -> None:
        self._redis = redis
        self.key = f"{prefix}:ingest:rejected"

    async def incr(self, reason: str) -> None:
        with contextlib.suppress(aioredis.RedisError):  # a counter must never cause a 500
            await self._redis.hincrby(self.key, reason, 1)

    async def snapshot(self) -> dict[str, int]:
        raw = await self._redis.hgetall(self.key)
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
