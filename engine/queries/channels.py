"""Channels as the API shows them: settings and which secrets are set, never their values."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.events import ChannelConfig, ChannelType
from engine.queries.common import IdView, UtcDatetime, contains_pattern


class ChannelView(IdView):
    type: ChannelType
    name: str
    external_id: str
    status: str
    config: ChannelConfig
    secret_names: tuple[str, ...]  # the secrets that have a value; the values stay in the row
    default_queue_id: int | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


# Only the names of the set secrets leave PostgreSQL: the values are never selected. Sealed
# rows (engine.secrets_box) list the names in `set`; plaintext rows from before have them as keys.
_SELECT = """
    SELECT c.id, c.type, c.name, c.external_id, c.status, c.config, c.default_queue_id,
           c.created_at, c.updated_at,
           CASE WHEN c.secrets ? 'ct'
                THEN ARRAY(SELECT n FROM jsonb_array_elements_text(c.secrets -> 'set') AS n
                           ORDER BY n)
                ELSE ARRAY(SELECT e.key FROM jsonb_each(c.secrets) AS e
                           WHERE jsonb_typeof(e.value) <> 'null' ORDER BY e.key)
           END AS secret_names
    FROM channels c
    WHERE c.tenant_id = :t
"""
_GET = text(_SELECT + " AND c.id = :id")
_SEARCH = " AND c.name ILIKE :pattern"
_TYPE = " AND c.type = :type"
_STATUS = " AND c.status = :status"
_PAGE = " AND c.id > :after ORDER BY c.id LIMIT :limit"


async def list_channels(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    search: str | None,
    type: ChannelType | None,
    status: str | None,
    after_id: int,
    limit: int,
) -> list[ChannelView]:
    """Up to `limit` channels with id > `after_id`, by id, optionally filtered."""
    sql = _SELECT
    params: dict[str, object] = {"t": tenant_id, "after": after_id, "limit": limit}
    if search is not None:  # fixed fragments only; every value is bound
        sql += _SEARCH
        params["pattern"] = contains_pattern(search)
    if type is not None:
        sql += _TYPE
        params["type"] = type.value
    if status is not None:
        sql += _STATUS
        params["status"] = status
    rows = (await conn.execute(text(sql + _PAGE), params)).mappings().all()
    return [ChannelView.model_validate(dict(r)) for r in rows]


async def get_channel_view(
    conn: AsyncConnection, tenant_id: int, channel_id: int
) -> ChannelView | None:
    row = (await conn.execute(_GET, {"t": tenant_id, "id": channel_id})).mappings().one_or_none()
    return None if row is None else ChannelView.model_validate(dict(row))
