"""The web process: Starlette app factory whose lifespan is the composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import dramatiq
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from actors.broker import bind_actors, build_broker
from actors.deps import default_adapters
from actors.inbound import process_inbox
from actors.middleware import RetryPolicy
from adapters.base import InboundAdapter
from api import (
    account,
    auth,
    automation,
    campaigns,
    clients,
    integration,
    privacy,
    realtime,
    resources,
    sla,
    stats,
    tickets,
    webhook_subscriptions,
    webhooks,
)
from api.channels import ChannelDirectory, RejectionCounters
from api.console import routes as console_routes
from api.console.stats import routes as console_stats_routes
from api.correlation import CorrelationMiddleware
from api.docs import docs_routes
from api.errors import ApiError, api_error_handler
from api.framework import ApiRouter
from api.health import readyz
from api.ingest import GroupCommitter
from api.ops import routes as ops_routes
from api.prometheus import metrics
from api.ratelimit import RateLimitMiddleware
from config import Settings, load_settings
from engine.db import connect_inbox_writer, create_async_db_engine
from engine.errors import DatabaseUnavailableError
from engine.events import ChannelType
from engine.heap import freeze_startup_heap
from engine.logs import configure_logging
from engine.metrics import forget_process
from engine.runtime import Runtime, resolve_runtime
from engine.store.dead_letters import NewDeadLetter

log = logging.getLogger(__name__)

# Every router declared with api.framework, one line each: all are served, and all are in
# GET /api/v1/openapi.json (tests/api/test_openapi.py fails for an /api route left out).
API_ROUTERS: list[ApiRouter] = [
    *resources.ROUTERS,
    *automation.ROUTERS,
    account.router,
    campaigns.router,
    clients.router,
    integration.router,
    privacy.router,
    sla.router,
    stats.router,
    tickets.router,
    webhook_subscriptions.router,
]
# Hand-written OpenAPI entries for endpoints outside the framework.
EXTRA_OPENAPI_PATHS = {**getattr(auth, "AUTH_OPENAPI_PATHS", {}), **realtime.OPENAPI_PATHS}


@dataclass(frozen=True)
class AppDeps:
    """Everything request handlers use; built once in the lifespan."""

    settings: Settings
    db: AsyncEngine
    redis: aioredis.Redis
    adapters: Mapping[ChannelType, InboundAdapter]
    ingest: GroupCommitter
    channels: ChannelDirectory
    counters: RejectionCounters


def _no_dead_letters_here(_: NewDeadLetter) -> None:
    raise RuntimeError("the web process enqueues work; it never processes it")


async def _unavailable_handler(request: Request, exc: Exception) -> Response:
    """A database outage is the world's fault: 503 and a hint to retry, never a bare 500."""
    log.warning("database unavailable", extra={"path": request.url.path})
    return await api_error_handler(
        request,
        ApiError(
            503,
            "unavailable",
            "service temporarily unavailable; retry",
            headers={"Retry-After": "5"},
        ),
    )


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    broker: dramatiq.Broker | None = None,
    *,
    freeze_heap: bool = False,
) -> Starlette:
    """Build the app. Without arguments, settings come from the environment (`flowdesk serve`).

    Tests pass their runtime and broker so that web and worker share them in one process.
    `freeze_heap` (the served process only, see engine.heap) exempts everything built at
    start-up from garbage collection.
    """
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_runtime = runtime is None
        rt = runtime if runtime is not None else await asyncio.to_thread(resolve_runtime, settings)
        app_settings = settings.model_copy(update={"JWT_SECRET": rt.jwt_secret})
        own_broker = broker is None
        if broker is None:
            app_broker = build_broker(
                redis_url=rt.redis_url,
                amqp_url=settings.AMQP_URL,
                namespace=settings.QUEUE_PREFIX,
                policy=RetryPolicy(),
                recorder=_no_dead_letters_here,
            )
            bind_actors(
                app_broker, queue_prefix=settings.QUEUE_PREFIX if settings.AMQP_URL else None
            )
        db = create_async_db_engine(rt.database_url, pool_size=settings.DB_POOL_SIZE)
        redis = aioredis.from_url(rt.redis_url)

        async def enqueue(ids: list[int]) -> None:
            await asyncio.to_thread(process_inbox.send, ids)

        ingest = GroupCommitter(
            lambda: connect_inbox_writer(rt.database_url),
            enqueue,
            max_batch=settings.INGEST_BATCH_MAX,
            wait_ms=settings.INGEST_BATCH_WAIT_MS,
            max_backlog=settings.INGEST_MAX_BACKLOG,
        )
        app.state.deps = AppDeps(
            settings=app_settings,
            db=db,
            redis=redis,
            adapters=default_adapters(),
            ingest=ingest,
            channels=ChannelDirectory(db),
            counters=RejectionCounters(redis, prefix=settings.QUEUE_PREFIX),
        )
        if freeze_heap:
            freeze_startup_heap()
        try:
            yield
        finally:
            await ingest.close()
            await db.dispose()
            await redis.aclose()
            forget_process()  # this process's live gauges (WebSockets) leave the sum
            if own_broker:
                app_broker.close()
            if own_runtime:
                rt.close()

    return Starlette(
        routes=[
            *webhooks.routes,  # first: the busiest path by far
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *auth.routes,
            *[route for router in API_ROUTERS for route in router.routes()],
            *realtime.routes,
            *ops_routes,
            *console_routes,
            *console_stats_routes,
            *docs_routes(API_ROUTERS, EXTRA_OPENAPI_PATHS),
        ],
        lifespan=lifespan,
        middleware=[Middleware(CorrelationMiddleware), Middleware(RateLimitMiddleware)],
        exception_handlers={
            ApiError: api_error_handler,
            DatabaseUnavailableError: _unavailable_handler,
        },
    )


def app_from_env() -> Starlette:
    """Entry for `uvicorn --factory api.app:app_from_env`."""
    settings = load_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    return create_app(settings, freeze_heap=True)
