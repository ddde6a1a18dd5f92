"""GET /metrics: the Prometheus exposition of every process of this host, plus queue depths."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Sequence

import dramatiq
import redis.asyncio as aioredis
from pika.exceptions import AMQPError
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from api.health import ReadinessDeps
from engine.metrics import multiprocess_dir

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEPTH_TTL_S = 5.0  # scrapes in between reuse the last reading
DEPTH_TIMEOUT_S = 1.0
STATES = ("ready", "delayed", "dead")

Depths = dict[tuple[str, str], int]


class QueueDepths(Collector):
    """Broker queue lengths read at scrape time, at most once per DEPTH_TTL_S.

    An unreachable broker leaves the metric out (the scrape itself still succeeds).
    """

    def __init__(self) -> None:
        self._depths: Depths = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self, deps: ReadinessDeps, broker: dramatiq.Broker) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < DEPTH_TTL_S:
                return
            queues = sorted(broker.get_declared_queues())
            try:
                async with asyncio.timeout(DEPTH_TIMEOUT_S):
                    if deps.settings.AMQP_URL:
                        self._depths = await asyncio.to_thread(_rabbitmq_depths, broker, queues)
                    else:
                        self._depths = await _redis_depths(
                            deps.redis, deps.settings.QUEUE_PREFIX, queues
                        )
            except (
                RedisError,
                OSError,
                TimeoutError,
                AMQPError,
                dramatiq.errors.DramatiqError,
            ) as exc:
                log.warning("queue depths unavailable", extra={"error": type(exc).__name__})
                self._depths = {}
            self._read_at = now

    def collect(self) -> Iterator[Metric]:
        if not self._depths:
            return
        family = GaugeMetricFamily(
            "flowdesk_queue_depth",
            "Messages in each broker queue: ready, delayed (retries, deferrals) and dead.",
            labels=["queue", "state"],
        )
        for (queue, state), depth in sorted(self._depths.items()):
            family.add_metric([queue, state], depth)
        yield family


async def _redis_depths(client: aioredis.Redis, namespace: str, queues: Sequence[str]) -> Depths:
    """dramatiq's Redis layout: a list per queue and per delay queue, a sorted set of dead."""
    async with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(f"{namespace}:{queue}")
            pipe.llen(f"{namespace}:{queue}.DQ")
            pipe.zcard(f"{namespace}:{queue}.XQ")
        counts = await pipe.execute()
    return _by_state(queues, counts)


def _rabbitmq_depths(broker: dramatiq.Broker, queues: Sequence[str]) -> Depths:
    counts: list[int] = []
    for queue in queues:
        counts += broker.get_queue_message_counts(queue)  # type: ignore[attr-defined]
    return _by_state(queues, counts)


def _by_state(queues: Sequence[str], counts: Iterable[object]) -> Depths:
    values = [int(str(c)) for c in counts]
    return {
        (queue, state): values[i * len(STATES) + j]
        for i, queue in enumerate(queues)
        for j, state in enumerate(STATES)
    }


def _exposition(depths: QueueDepths) -> bytes:
    path = multiprocess_dir()
    if path is None:
        base = generate_latest(REGISTRY)
    else:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
        base = generate_latest(registry)
    extra = CollectorRegistry()
    extra.register(depths)
    return base + generate_latest(extra)


async def metrics(request: Request) -> Response:
    """Every process's metrics summed through the multiprocess directory when there is one,
    else this process's own; queue depths read from the broker (cached a few seconds)."""
    deps: ReadinessDeps = request.app.state.deps
    depths: QueueDepths | None = getattr(request.app.state, "queue_depths", None)
    if depths is None:
        depths = request.app.state.queue_depths = QueueDepths()
    await depths.refresh(deps, dramatiq.get_broker())
    body = await asyncio.to_thread(_exposition, depths)
    return Response(body, media_type=CONTENT_TYPE)
