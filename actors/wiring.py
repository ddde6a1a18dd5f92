"""Wiring for worker-side processes: dependencies, broker and actors, built explicitly."""

from __future__ import annotations

import httpx
import redis

from actors import (  # noqa: F401 - importing declares the actors
    campaigns,
    deliver,
    inbound,
    media,
    outbound,
)
from actors.broker import bind_actors, build_broker
from actors.deps import WorkerDeps, default_adapters, install
from actors.middleware import RetryPolicy
from config import Settings
from engine.db import create_db_engine
from engine.http_pool import HttpPool
from engine.media import MediaStorage
from engine.media_storage import storage_from_settings
from engine.ratelimit import TokenBucket
from engine.runtime import Runtime


def provider_http_client() -> httpx.Client:
    """One pooled client per worker process for every provider API (thread-safe).

    Timeouts are set so a hung provider becomes a retry, not a stuck worker thread.
    """
    return httpx.Client(
        timeout=httpx.Timeout(15.0, connect=5.0),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        follow_redirects=False,
    )


def media_storage(settings: Settings) -> MediaStorage:
    """The media store MEDIA_STORAGE selects. Raises ConfigError naming what is missing."""
    return storage_from_settings(
        settings.MEDIA_STORAGE,
        data_dir=settings.FLOWDESK_DATA_DIR,
        media_dir=settings.MEDIA_DIR,
        s3_bucket=settings.S3_BUCKET,
        s3_endpoint_url=settings.S3_ENDPOINT_URL,
        s3_region=settings.S3_REGION,
        s3_access_key_id=settings.S3_ACCESS_KEY_ID,
        s3_secret_access_key=settings.S3_SECRET_ACCESS_KEY,
        s3_prefix=settings.S3_PREFIX,
    )


def build_worker_deps(settings: Settings, runtime: Runtime) -> WorkerDeps:
    """Dependencies for actors in this process, and the broker bound to them."""
    storage = media_storage(settings)  # first: a missing S3 extra fails before any connection
    client = redis.Redis.from_url(runtime.redis_url)
    deps = WorkerDeps(
        settings=settings,
        db=create_db_engine(runtime.database_url, pool_size=settings.DB_POOL_SIZE),
        redis=client,
        adapters=default_adapters(),
        http=provider_http_client(),
        bucket=TokenBucket(client, f"{settings.QUEUE_PREFIX}:ratelimit"),
        storage=storage,
        send_pool=HttpPool(settings.SEND_CONCURRENCY, provider_http_client),
    )
    broker = build_broker(
        redis_url=runtime.redis_url,
        amqp_url=settings.AMQP_URL,
        namespace=settings.QUEUE_PREFIX,
        policy=RetryPolicy(
            max_retries=settings.MAX_RETRIES,
            min_backoff_ms=settings.MIN_BACKOFF_MS,
            max_backoff_ms=settings.MAX_BACKOFF_MS,
        ),
        recorder=deps.record_dead_letter,
    )
    bind_actors(broker, queue_prefix=settings.QUEUE_PREFIX if settings.AMQP_URL else None)
    install(deps)
    return deps
