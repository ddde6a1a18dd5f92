"""Every Prometheus metric of the engine, declared once, and the multiprocess set-up.

Labels are bounded on purpose: channel *type*, stage, actor, queue, outcome, status and a
capped set of provider error codes. Never tenant, channel, ticket or message ids.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import mark_process_dead
from sqlalchemy import Connection, text

P = ParamSpec("P")
R = TypeVar("R")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

WEBHOOKS_RECEIVED = Counter(
    "flowdesk_webhooks_received",
    "Provider webhooks received, by channel type and outcome (accepted, duplicate or the "
    "rejection reason).",
    ["channel", "outcome"],
)
STAGE_SECONDS = Histogram(
    "flowdesk_pipeline_stage_seconds",
    "Time spent in one call of a pipeline stage (a whole batch for inbound stages).",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
ACTOR_MESSAGES = Counter(
    "flowdesk_actor_messages",
    "Broker messages processed by actor, queue and outcome (ok, failed, skipped).",
    ["actor", "queue", "outcome"],
)
ACTOR_SECONDS = Histogram(
    "flowdesk_actor_seconds",
    "Time to process one broker message, by actor and queue.",
    ["actor", "queue"],
    buckets=_STAGE_BUCKETS,
)
RETRIES = Counter(
    "flowdesk_retries", "Broker messages scheduled for another attempt.", ["actor", "queue"]
)
DEAD_LETTERS = Counter(
    "flowdesk_dead_letters", "Work recorded as a dead letter.", ["actor", "queue"]
)
DELIVERIES = Counter(
    "flowdesk_deliveries",
    "Outbound message status changes by channel type and status (sent, delivered, read, failed).",
    ["channel", "status"],
)
PROVIDER_ERRORS = Counter(
    "flowdesk_provider_errors",
    "Failed provider calls by channel type and the provider's error code.",
    ["channel", "code"],
)
CAMPAIGN_SENDS = Counter(
    "flowdesk_campaign_sends",
    "Campaign messages handed to a provider, by outcome (sent, failed, retrying).",
    ["outcome"],
)
WEBSOCKETS = Gauge(
    "flowdesk_websocket_connections",
    "Open realtime WebSocket connections, by endpoint.",
    ["endpoint"],
    multiprocess_mode="livesum",
)

# Provider error codes come from outside: keep a bounded set per process, the rest is "other".
MAX_ERROR_CODES = 100
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_seen_codes: set[str] = set()
_codes_lock = threading.Lock()


def error_code_label(code: object) -> str:
    """A label value for a provider error code that cannot grow without bound."""
    value = "none" if code is None else str(code)
    if not _CODE.match(value):
        return "other"
    with _codes_lock:
        if value in _seen_codes:
            return value
        if len(_seen_codes) >= MAX_ERROR_CODES:
            return "other"
        _seen_codes.add(value)
    return value


def timed_stage(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a pipeline stage so every call is observed in STAGE_SECONDS{stage}."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @wraps(fn)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                STAGE_SECONDS.labels(stage=stage).observe(time.perf_counter() - started)

        return timed

    return decorate


def counts_connections(
    endpoint: str,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate a WebSocket handler: WEBSOCKETS{endpoint} counts the calls in progress."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(fn)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            # Labelled at call time: the value class is fixed when a child is first made.
            WEBSOCKETS.labels(endpoint=endpoint).inc()
            try:
                return await fn(*args, **kwargs)
            finally:
                WEBSOCKETS.labels(endpoint=endpoint).dec()

        return counted

    return decorate


# Channel types never change, so a process may remember them; the lookup runs under the
# caller's tenant scope, where the channel is visible.
_channel_types: dict[int, str] = {}


def count_delivery(conn: Connection, *, channel_id: int, status: str) -> None:
    """Count one status change of an outbound message (channel type looked up once)."""
    channel = _channel_types.get(channel_id)
    if channel is None:
        found = conn.execute(
            text("SELECT type FROM channels WHERE id = :id"), {"id": channel_id}
        ).scalar_one_or_none()
        channel = str(found) if found is not None else "unknown"
        if found is not None:
            _channel_types[channel_id] = channel
    DELIVERIES.labels(channel=channel, status=status).inc()


_active_dir: Path | None = None


def multiprocess_dir() -> Path | None:
    """The directory this process records metrics into, when multiprocess mode is on."""
    return _active_dir


def use_multiprocess_dir(path: Path, *, clean: bool) -> None:
    """Record this process's metrics (and its children's) as files in `path`.

    `clean` empties the directory first: only the process that starts a whole run does so,
    because files of dead processes would otherwise be summed forever. Children inherit the
    directory through the environment, which is where prometheus-client looks for it.
    """
    global _active_dir
    path.mkdir(parents=True, exist_ok=True)
    if clean:
        for stale in path.glob("*.db"):  # only prometheus-client's files, never anything else
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    _active_dir = path
    # Values are bound when a labelled child is first used; from now on they go to files.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def prepare_multiprocess(configured: Path | None, *, fresh: bool) -> Path | None:
    """Switch this process (and the ones it starts) to the host's metrics directory.

    `configured` (PROMETHEUS_MULTIPROC_DIR) is shared by the processes of the host; a run
    started with `fresh` empties it first. Without one, metrics stay in this process's
    memory: correct for itself, just not summed with the others'.
    """
    if configured is None:
        return None
    use_multiprocess_dir(configured, clean=fresh)
    return configured


def forget_process(pid: int | None = None) -> None:
    """Drop the live gauges of an exiting process from the multiprocess directory."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(  # type: ignore[no-untyped-call]
            os.getpid() if pid is None else pid, str(path)
        )
