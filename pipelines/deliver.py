"""Deliver stage helpers: how committed events are shaped for realtime subscribers."""

from __future__ import annotations

import json

from engine.store.outbox import OutboxEvent

# Roughly the last 10 000 events per tenant stay replayable; `~` lets Redis trim whole nodes.
STREAM_MAXLEN = 10_000


def realtime_channel(prefix: str, tenant_id: int) -> str:
    """The per-tenant Redis pub/sub channel; a tenant's subscribers never see another's."""
    return f"{prefix}:tenant:{tenant_id}:events"


def realtime_stream(prefix: str, tenant_id: int) -> str:
    """The per-tenant Redis Stream: the same events, kept so a reconnecting client can replay."""
    return f"{prefix}:tenant:{tenant_id}:stream"


def realtime_message(event: OutboxEvent) -> str:
    return json.dumps(
        {
            "id": event.id,
            "topic": event.topic,
            "tenant_id": event.tenant_id,
            "at": event.created_at.isoformat(),
            "data": json.loads(event.payload_json),
        }
    )


def stream_fields(event: OutboxEvent) -> dict[str, str]:
    """The Stream entry of `event`; `data` stays the outbox payload's JSON text."""
    return {
        "outbox_id": str(event.id),
        "topic": event.topic,
        "at": event.created_at.isoformat(),
        "data": event.payload_json,
    }
