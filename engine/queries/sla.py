"""SLA policies and recorded breaches, as the API lists them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import IdView, UtcDatetime

SlaKind = Literal["first_response", "next_response", "resolution"]


class SlaPolicyView(IdView):
    name: str
    queue_id: int | None
    tag_id: int | None
    first_response_s: int | None
    next_response_s: int | None
    resolution_s: int | None
    business_hours_only: bool
    escalate_to_queue_id: int | None
    escalate_to_user_id: int | None
    created_at: UtcDatetime


class SlaEventView(IdView):
    policy_id: int
    ticket_id: int
    kind: SlaKind
    due_at: UtcDatetime
    breached_at: UtcDatetime


_POLICIES = """
    SELECT id, name, queue_id, tag_id, first_response_s, next_response_s, resolution_s,
           business_hours_only, escalate_to_queue_id, escalate_to_user_id, created_at
    FROM sla_policies WHERE tenant_id = :t
"""
_LIST_POLICIES = text(_POLICIES + " AND id > :after ORDER BY id LIMIT :limit")
_GET_POLICY = text(_POLICIES + " AND id = :id")
_EVENTS = text(
    """
    SELECT id, policy_id, ticket_id, kind, due_at, breached_at FROM sla_events
    WHERE tenant_id = :t AND id > :after
      AND (CAST(:ticket_id AS bigint) IS NULL OR ticket_id = :ticket_id)
      AND (CAST(:since AS timestamptz) IS NULL OR breached_at >= :since)
    ORDER BY id LIMIT :limit
    """
)
_EXISTING = text(
    """
    SELECT 'queue' AS kind, id FROM queues WHERE tenant_id = :t AND id = ANY(:queue_ids)
    UNION ALL SELECT 'tag', id FROM tags WHERE tenant_id = :t AND id = ANY(:tag_ids)
    UNION ALL SELECT 'user', id FROM users WHERE tenant_id = :t AND id = ANY(:user_ids)
    """
)


async def list_sla_policies(
    conn: AsyncConnection, tenant_id: int, *, after_id: int, limit: int
) -> list[SlaPolicyView]:
    params = {"t": tenant_id, "after": after_id, "limit": limit}
    rows = (await conn.execute(_LIST_POLICIES, params)).mappings().all()
    return [SlaPolicyView.model_validate(dict(r)) for r in rows]


async def get_sla_policy(
    conn: AsyncConnection, tenant_id: int, policy_id: int
) -> SlaPolicyView | None:
    row = (await conn.execute(_GET_POLICY, {"t": tenant_id, "id": policy_id})).mappings().first()
    return None if row is None else SlaPolicyView.model_validate(dict(row))


async def list_sla_events(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    ticket_id: int | None,
    since: datetime | None,
    after_id: int,
    limit: int,
) -> list[SlaEventView]:
    """Breaches in the order they were recorded, optionally of one ticket or since a time."""
    params = {
        "t": tenant_id,
        "ticket_id": ticket_id,
        "since": since,
        "after": after_id,
        "limit": limit,
    }
    rows = (await conn.execute(_EVENTS, params)).mappings().all()
    return [SlaEventView.model_validate(dict(r)) for r in rows]


async def get_existing_refs(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    queue_ids: list[int],
    tag_ids: list[int],
    user_ids: list[int],
) -> set[tuple[str, int]]:
    """Which of the named queues, tags and users exist in the tenant, as (kind, id)."""
    params = {"t": tenant_id, "queue_ids": queue_ids, "tag_ids": tag_ids, "user_ids": user_ids}
    return {(str(r[0]), int(r[1])) for r in await conn.execute(_EXISTING, params)}
