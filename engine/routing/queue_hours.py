"""A queue's own business hours: set or clear them (None: the tenant's hours apply)."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

from engine.settings_registry import BusinessHours

_SET = text(
    "UPDATE queues SET business_hours = CAST(:h AS jsonb) WHERE tenant_id = :t AND id = :id"
)


def set_queue_hours(
    conn: Connection, *, tenant_id: int, queue_id: int, hours: BusinessHours | None
) -> bool:
    """Store validated hours on the queue; False when there is no such queue in the tenant."""
    value = None if hours is None else json.dumps(hours.model_dump(mode="json"))
    return conn.execute(_SET, {"t": tenant_id, "id": queue_id, "h": value}).rowcount > 0
