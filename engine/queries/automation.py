"""A tenant's automation set-up as the admin API shows it: chat flows, auto-replies, auto-tags."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import TypeVar

from pydantic import JsonValue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import IdView, UtcDatetime


class ChatFlowView(IdView):
    name: str
    is_default: bool
    definition: JsonValue
    channel_ids: tuple[int, ...]  # channels that run this flow on their new tickets
    created_at: UtcDatetime
    updated_at: UtcDatetime


class AutoReplyView(IdView):
    name: str
    channel_id: int | None
    match_kind: str
    pattern: str
    reply: str
    priority: int
    active_from: time | None
    active_to: time | None
    enabled: bool


class AutoTagRuleView(IdView):
    tag_id: int
    channel_id: int | None
    match_kind: str
    pattern: str
    enabled: bool


V = TypeVar("V", bound=IdView)

_FLOWS = """
    SELECT f.id, f.name, f.is_default, f.definition, f.created_at, f.updated_at,
           coalesce((SELECT array_agg(c.id ORDER BY c.id) FROM channels c
                     WHERE c.tenant_id = f.tenant_id AND c.chat_flow_id = f.id),
                    '{}') AS channel_ids
    FROM chat_flows f WHERE f.tenant_id = :t
"""
_REPLIES = """
    SELECT id, name, channel_id, match_kind, pattern, reply, priority, active_from, active_to,
           enabled
    FROM auto_replies WHERE tenant_id = :t
"""
_TAG_RULES = """
    SELECT id, tag_id, channel_id, match_kind, pattern, enabled
    FROM auto_tag_rules WHERE tenant_id = :t
"""
_QUERIES: dict[type[IdView], str] = {
    ChatFlowView: _FLOWS.replace("f.tenant_id = :t", "f.tenant_id = :t AND f.id {cmp}"),
    AutoReplyView: _REPLIES + " AND id {cmp}",
    AutoTagRuleView: _TAG_RULES + " AND id {cmp}",
}


async def list_rows(
    conn: AsyncConnection, model: type[V], tenant_id: int, *, after_id: int, limit: int
) -> list[V]:
    """Up to `limit` rows with id > `after_id`, by id."""
    sql = text(_QUERIES[model].replace("{cmp}", "> :after") + " ORDER BY 1 LIMIT :limit")
    rows = await conn.execute(sql, {"t": tenant_id, "after": after_id, "limit": limit})
    return [model.model_validate(dict(r)) for r in rows.mappings()]


async def get_row(conn: AsyncConnection, model: type[V], tenant_id: int, row_id: int) -> V | None:
    sql = text(_QUERIES[model].replace("{cmp}", "= :id"))
    row = (await conn.execute(sql, {"t": tenant_id, "id": row_id})).mappings().one_or_none()
    return None if row is None else model.model_validate(dict(row))


async def get_known_ids(
    conn: AsyncConnection, table: str, tenant_id: int, ids: Sequence[int]
) -> set[int]:
    """Which of `ids` are rows of the tenant's `table` (queues, users, channels or tags)."""
    if table not in ("queues", "users", "channels", "tags"):
        raise ValueError(f"not a table to check ids in: {table}")
    sql = text(f"SELECT id FROM {table} WHERE tenant_id = :t AND id = ANY(:ids)")  # noqa: S608
    rows = await conn.execute(sql, {"t": tenant_id, "ids": list(ids)})
    return {int(r[0]) for r in rows}
