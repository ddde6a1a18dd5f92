"""Queues' own business hours, as the API shows them next to each queue."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.settings_registry import BusinessHours

log = logging.getLogger(__name__)

_HOURS = text(
    "SELECT id, business_hours FROM queues "
    "WHERE tenant_id = :t AND id = ANY(:ids) AND business_hours IS NOT NULL"
)


async def get_queue_hours(
    conn: AsyncConnection, tenant_id: int, queue_ids: list[int]
) -> dict[int, BusinessHours]:
    """The queues among `queue_ids` that have hours of their own. Read-only.

    Stored hours that no longer validate are logged and left out (the tenant's apply).
    """
    found: dict[int, BusinessHours] = {}
    for queue_id, stored in await conn.execute(_HOURS, {"t": tenant_id, "ids": queue_ids}):
        try:
            found[int(queue_id)] = BusinessHours.model_validate(stored)
        except ValidationError:
            log.warning("stored queue hours invalid", extra={"queue_id": queue_id})
    return found
