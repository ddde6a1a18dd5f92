"""Module `dramatiq` loads for the worker baseline: a no-op actor on a namespaced RedisBroker."""

from __future__ import annotations

import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench.noop import ACTOR, QUEUE, done_key, finished_key
from config import load_settings

_settings = load_settings()
_prefix = _settings.QUEUE_PREFIX
broker = RedisBroker(url=_settings.redis_url(), namespace=_prefix)  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
_client = redis.Redis.from_url(_settings.redis_url())


@dramatiq.actor(queue_name=QUEUE, actor_name=ACTOR, max_retries=0)
def noop(run: str, total: int) -> None:
    """Count itself done; the last of a run stamps the wall time the orchestrator reads."""
    if _client.incr(done_key(_prefix, run)) == total:
        _client.set(finished_key(_prefix, run), repr(time.time()))
