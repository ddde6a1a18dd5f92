"""Deliver actors: what happens after a pipeline commits (realtime events for now)."""

from __future__ import annotations

import logging

from actors import deps
from actors.broker import actor
from engine.db import system_tx
from engine.store.outbox import claim_outbox, mark_outbox_published
from pipelines.deliver import realtime_channel, realtime_message

log = logging.getLogger(__name__)


@actor(queue_name="deliver")
def publish_outbox(outbox_ids: list[int]) -> None:
    """Publish committed outbox events on each tenant's Redis channel, then mark them done.

    At-least-once: a crash between publish and commit republishes; events carry their outbox
    id so subscribers can drop repeats.
    """
    d = deps.current()
    with system_tx(d.db) as conn:
        events = claim_outbox(conn, outbox_ids)
        if not events:
            return
        with d.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(
                    realtime_channel(d.realtime_prefix, event.tenant_id), realtime_message(event)
                )
            pipe.execute()
        mark_outbox_published(conn, [e.id for e in events])
    log.debug("outbox published", extra={"stage": "deliver", "count": len(events)})
