"""Deliver stage helpers: how committed events are shaped for realtime subscribers."""

from __future__ import annotations

import json

from engine.store.outbox import OutboxEvent


def realtime_channel(prefix: str, tenant_id: int) -> str:
    """The per-tenant Redis pub/sub channel; a tenant's subscribers never see another's."""
    return f"{prefix}:tenant:{tenant_id}:events"


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
