"""The queues overview: broker depths, throughput and live dead letters, per queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.db import async_system_tx
from engine.ops.depths import RABBITMQ_NOTE, rabbitmq_depths, redis_depths
from engine.ops.models import MinuteCount, QueueDepth, QueuesOverview, QueueStats, TenantCount
from engine.ops.throughput import minute_history, per_minute
from engine.store.dead_letters import count_live_dead_letters


@dataclass(frozen=True)
class BrokerRef:
    """Where the queues live: RabbitMQ when amqp_url is set, else Redis under `namespace`."""

    namespace: str
    amqp_url: str | None = None

    @property
    def kind(self) -> str:
        return "rabbitmq" if self.amqp_url else "redis"


async def read_queues(
    client: aioredis.Redis, db: AsyncEngine, broker: BrokerRef, queues: Sequence[str]
) -> QueuesOverview:
    """Every queue an actor is bound to, and every queue that has dead letters."""
    async with async_system_tx(db) as conn:
        dead = await conn.run_sync(count_live_dead_letters)
    names = sorted(set(queues) | {q for q, _, _ in dead})
    now_s = time.time()
    if broker.amqp_url:
        depths = await asyncio.to_thread(rabbitmq_depths, broker.amqp_url, names)
    else:
        depths = await redis_depths(client, broker.namespace, names, now_ms=int(now_s * 1000))
    history = await minute_history(client, broker.namespace, names, now_s=now_s)
    return overview(broker, names, depths, history, dead, now_s=now_s)


def overview(
    broker: BrokerRef,
    names: Sequence[str],
    depths: Mapping[str, QueueDepth],
    history: Mapping[str, tuple[MinuteCount, ...]],
    dead: Sequence[tuple[str, int | None, int]],
    *,
    now_s: float,
) -> QueuesOverview:
    stats = []
    for name in names:
        depth = depths[name]
        by_tenant = tuple(TenantCount(tenant_id=t, count=n) for q, t, n in dead if q == name)
        processed, failed = per_minute(history[name], now_s=now_s)
        stats.append(
            QueueStats(
                name=name,
                ready=depth.ready,
                delayed=depth.delayed,
                in_flight=depth.in_flight,
                dead=sum(c.count for c in by_tenant),
                oldest_age_s=depth.oldest_age_s,
                processed_per_min=processed,
                failed_per_min=failed,
                history=history[name],
                dead_by_tenant=by_tenant,
            )
        )
    notes = (RABBITMQ_NOTE,) if broker.amqp_url else ()
    return QueuesOverview(broker=broker.kind, queues=tuple(stats), notes=notes)
