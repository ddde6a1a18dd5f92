"""The broker (the one process-global) and the registry that binds actors to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)

from actors.middleware import DeadLetterRecorder, RetriesWithDeadLetters, RetryPolicy
from actors.observability import WorkObservability
from actors.ops_middleware import ops_middleware
from engine.errors import EngineError

P = ParamSpec("P")
R = TypeVar("R")

# Actors are declared at import time against a placeholder, then re-declared on the real broker
# by bind_actors(): importing an actor module never connects to anything.
_PLACEHOLDER = StubBroker()
_REGISTRY: list[dramatiq.Actor[Any, Any]] = []
_BASE_QUEUES: dict[str, str] = {}


def actor(
    *, queue_name: str, max_retries: int | None = None, time_limit_ms: int = 120_000
) -> Callable[[Callable[P, R]], dramatiq.Actor[P, R]]:
    """Declare an actor. Retry vs dead-letter is decided by the error it raises (errors.py)."""

    def decorate(fn: Callable[P, R]) -> dramatiq.Actor[P, R]:
        # `throws` only tells dramatiq's worker these are expected: it then logs them at info
        # without a traceback; our middleware logs retries (warning) and dead letters (info).
        options: dict[str, Any] = {"time_limit": time_limit_ms, "throws": (EngineError,)}
        if max_retries is not None:
            options["max_retries"] = max_retries
        declared: dramatiq.Actor[P, R] = dramatiq.actor(
            queue_name=queue_name, broker=_PLACEHOLDER, **options
        )(fn)
        _REGISTRY.append(declared)
        _BASE_QUEUES[declared.actor_name] = queue_name
        return declared

    return decorate


def build_broker(
    *,
    redis_url: str | None,
    amqp_url: str | None,
    namespace: str,
    policy: RetryPolicy,
    recorder: DeadLetterRecorder,
) -> dramatiq.Broker:
    """RabbitMQ when AMQP_URL is set, else Redis; our retry/dead-letter middleware either way."""
    middleware = [
        WorkObservability(),  # first: binds log context before, logs the outcome after all
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
        RetriesWithDeadLetters(policy=policy, recorder=recorder),
    ]
    if redis_url:  # throughput and heartbeats for operators (actors/ops_middleware.py)
        middleware += ops_middleware(redis_url, namespace)
    broker: dramatiq.Broker
    if amqp_url:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=amqp_url, middleware=middleware)
    else:
        from dramatiq.brokers.redis import RedisBroker

        assert redis_url is not None
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=redis_url, namespace=namespace, middleware=middleware
        )
    return broker


def bind_actors(broker: dramatiq.Broker, *, queue_prefix: str | None = None) -> None:
    """Make `broker` the global broker and declare every registered actor on it.

    RabbitMQ has no namespaces, so there queue names carry the prefix instead.
    """
    dramatiq.set_broker(broker)
    for declared in _REGISTRY:
        base = _BASE_QUEUES[declared.actor_name]
        declared.queue_name = f"{queue_prefix}.{base}" if queue_prefix else base
        declared.broker = broker
        broker.declare_actor(declared)


def registered_actors() -> list[dramatiq.Actor[Any, Any]]:
    return list(_REGISTRY)


def queue_names(queue_prefix: str | None = None) -> list[str]:
    """Every queue an actor is declared on, named as bind_actors() names them."""
    return sorted({f"{queue_prefix}.{q}" if queue_prefix else q for q in _BASE_QUEUES.values()})
