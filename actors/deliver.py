"""Deliver actors: what happens after a pipeline commits (realtime events, tenant webhooks)."""

from __future__ import annotations

import logging

import dramatiq
import redis

from actors import deps
from actors.broker import actor
from actors.deps import WorkerDeps
from actors.webhooks import deliver_webhook
from engine.db import system_tx
from engine.errors import EngineError
from engine.store.outbox import claim_outbox, mark_outbox_published
from pipelines.deliver import (
    STREAM_MAXLEN,
    realtime_channel,
    realtime_message,
    realtime_stream,
    stream_fields,
)
from pipelines.webhooks import plan_webhooks

log = logging.getLogger(__name__)


@actor(queue_name="deliver")
def publish_outbox(outbox_ids: list[int]) -> None:
    """Publish committed outbox events (publish_events); the sweeper re-offers lost ones."""
    publish_events(deps.current(), outbox_ids)


def publish_events(d: WorkerDeps, outbox_ids: list[int]) -> int:
    """Publish committed outbox events on each tenant's Redis channel and replayable Stream,
    plan the tenant's webhook deliveries, then mark the events done; how many were published.

    At-least-once: a crash between publish and commit republishes; events carry their outbox
    id so subscribers can drop repeats. Webhook deliveries are planned once per event. Called
    by publish_outbox and, right after their commit, by pipelines that publish in-line.
    """
    with system_tx(d.db) as conn:
        events = claim_outbox(conn, outbox_ids)
        if not events:
            return 0
        with d.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(
                    realtime_channel(d.realtime_prefix, event.tenant_id), realtime_message(event)
                )
                pipe.xadd(
                    realtime_stream(d.realtime_prefix, event.tenant_id),
                    stream_fields(event),  # type: ignore[arg-type]
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
            pipe.execute()
        deliveries = plan_webhooks(conn, [e.id for e in events])
        mark_outbox_published(conn, [e.id for e in events])
    # After commit, so the worker finds the rows; the tenant id labels any dead letter.
    for delivery in deliveries:
        deliver_webhook.send_with_options(args=(delivery.id,), tenant_id=delivery.tenant_id)
    log.debug(
        "outbox published",
        extra={"stage": "deliver", "count": len(events), "webhooks": len(deliveries)},
    )
    return len(events)


def publish_in_line(d: WorkerDeps, outbox_ids: list[int], *, what: str) -> None:
    """publish_events right after the commit that recorded the events, for pipelines that
    would otherwise send a publish_outbox message per batch. A failure is only logged: the
    rows stay unpublished and the sweeper re-offers them."""
    if not outbox_ids:
        return
    try:
        publish_events(d, outbox_ids)
    except (redis.RedisError, EngineError, dramatiq.errors.DramatiqError) as exc:
        log.warning(
            f"publishing {what} failed; left to the sweeper",
            extra={"count": len(outbox_ids), "error": type(exc).__name__},
        )
