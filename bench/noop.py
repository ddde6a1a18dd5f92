"""The worker baseline's shared names, and enqueueing its no-op messages from the orchestrator."""

from __future__ import annotations

import dramatiq

QUEUE = "noop"
ACTOR = "noop"


def done_key(prefix: str, run: str) -> str:
    return f"{prefix}:bench:done:{run}"


def finished_key(prefix: str, run: str) -> str:
    return f"{prefix}:bench:finished:{run}"


def enqueue_noops(broker: dramatiq.Broker, *, run: str, total: int) -> None:
    """Send `total` no-op messages one by one, as a producer would."""
    for _ in range(total):
        broker.enqueue(
            dramatiq.Message(
                queue_name=QUEUE, actor_name=ACTOR, args=(run, total), kwargs={}, options={}
            )
        )
