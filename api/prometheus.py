"""GET /metrics: the Prometheus exposition of every process of this host, plus queue depths."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

from pika.exceptions import AMQPError
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from api import ops_service
from api.health import ReadinessDeps
from engine.errors import DatabaseUnavailableError
from engine.metrics import multiprocess_dir
from engine.ops.models import QueuesOverview

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEPTH_TTL_S = 5.0  # scrapes in between reuse the last reading
DEPTH_TIMEOUT_S = 2.0


class QueueDepths(Collector):
    """The ops overview's per-queue counts (engine.ops.queues), read at scrape time and at most
    once per DEPTH_TTL_S, so /metrics and the ops pages never disagree.

    An unreachable broker or database leaves the metrics out (the scrape itself succeeds).
    """

    def __init__(self) -> None:
        self._overview: QueuesOverview | None = None
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self, deps: ReadinessDeps) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < DEPTH_TTL_S:
                return
            try:
                async with asyncio.timeout(DEPTH_TIMEOUT_S):
                    self._overview = await ops_service.queues(deps)
            except (
                RedisError,
                OSError,
                TimeoutError,
                AMQPError,
                SQLAlchemyError,
                DatabaseUnavailableError,
            ) as exc:
                log.warning("queue depths unavailable", extra={"error": type(exc).__name__})
                self._overview = None
            self._read_at = now

    def collect(self) -> Iterator[Metric]:
        if self._overview is None:
            return
        depth = GaugeMetricFamily(
            "flowdesk_queue_depth",
            "Messages in each broker queue: ready, delayed (retries, deferrals), in_flight "
            "(fetched by a worker, not yet acked; Redis only) and dead (live dead letters).",
            labels=["queue", "state"],
        )
        age = GaugeMetricFamily(
            "flowdesk_queue_oldest_age_seconds",
            "Age of the oldest ready message in each queue (Redis only).",
            labels=["queue"],
        )
        for q in self._overview.queues:
            states: dict[str, int | None] = {"ready": q.ready, "delayed": q.delayed}
            states |= {"in_flight": q.in_flight, "dead": q.dead}
            for state, count in states.items():
                if count is not None:
                    depth.add_metric([q.name, state], count)
            if q.oldest_age_s is not None:
                age.add_metric([q.name], q.oldest_age_s)
        yield depth
        yield age


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
    await depths.refresh(deps)
    body = await asyncio.to_thread(_exposition, depths)
    return Response(body, media_type=CONTENT_TYPE)
