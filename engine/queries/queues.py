"""Queues of a tenant with their members, as the API lists them."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import IdView, UtcDatetime, contains_pattern

Distribution = Literal["none", "round_robin", "least_loaded"]


class QueueView(IdView):
    name: str
    color: str | None
    greeting: str | None
    distribution: Distribution
    user_ids: tuple[int, ...]
    created_at: UtcDatetime


# Members are filtered on tenant_id too, so a stray cross-tenant row could never show up.
_SELECT = """
    SELECT q.id, q.name, q.color, q.greeting, q.distribution, q.created_at,
           coalesce((SELECT array_agg(uq.user_id ORDER BY uq.user_id) FROM user_queues uq
                     WHERE uq.queue_id = q.id AND uq.tenant_id = :t), '{}') AS user_ids
    FROM queues q
    WHERE q.tenant_id = :t
"""
_LIST = text(_SELECT + " AND q.id > :after ORDER BY q.id LIMIT :limit")
_SEARCH = text(_SELECT + " AND q.id > :after AND q.name ILIKE :pattern ORDER BY q.id LIMIT :limit")
_GET = text(_SELECT + " AND q.id = :id")


async def list_queues(
    conn: AsyncConnection, tenant_id: int, *, search: str | None, after_id: int, limit: int
) -> list[QueueView]:
    """Up to `limit` queues with id > `after_id`, by id; `search` matches part of the name."""
    params: dict[str, object] = {"t": tenant_id, "after": after_id, "limit": limit}
    sql = _LIST
    if search is not None:
        sql, params["pattern"] = _SEARCH, contains_pattern(search)
    rows = (await conn.execute(sql, params)).mappings().all()
    return [QueueView.model_validate(dict(r)) for r in rows]


async def get_queue(conn: AsyncConnection, tenant_id: int, queue_id: int) -> QueueView | None:
    row = (await conn.execute(_GET, {"t": tenant_id, "id": queue_id})).mappings().one_or_none()
    return None if row is None else QueueView.model_validate(dict(row))
