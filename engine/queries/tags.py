"""Tags of a tenant, as the API lists them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import IdView, contains_pattern


class TagView(IdView):
    name: str
    color: str | None
    auto_keywords: tuple[str, ...]


_SELECT = "SELECT id, name, color, auto_keywords FROM tags WHERE tenant_id = :t"
_LIST = text(_SELECT + " AND id > :after ORDER BY id LIMIT :limit")
_SEARCH = text(_SELECT + " AND id > :after AND name ILIKE :pattern ORDER BY id LIMIT :limit")
_GET = text(_SELECT + " AND id = :id")
_KNOWN = text("SELECT id FROM tags WHERE tenant_id = :t AND id = ANY(:ids)")


async def list_tags(
    conn: AsyncConnection, tenant_id: int, *, search: str | None, after_id: int, limit: int
) -> list[TagView]:
    """Up to `limit` tags with id > `after_id`, by id; `search` matches part of the name."""
    params: dict[str, object] = {"t": tenant_id, "after": after_id, "limit": limit}
    sql = _LIST
    if search is not None:
        sql, params["pattern"] = _SEARCH, contains_pattern(search)
    rows = (await conn.execute(sql, params)).mappings().all()
    return [TagView.model_validate(dict(r)) for r in rows]


async def get_tag(conn: AsyncConnection, tenant_id: int, tag_id: int) -> TagView | None:
    row = (await conn.execute(_GET, {"t": tenant_id, "id": tag_id})).mappings().one_or_none()
    return None if row is None else TagView.model_validate(dict(row))


async def get_known_tag_ids(conn: AsyncConnection, tenant_id: int, ids: Sequence[int]) -> set[int]:
    """Which of `ids` are tags of this tenant."""
    rows = await conn.execute(_KNOWN, {"t": tenant_id, "ids": list(ids)})
    return {int(r[0]) for r in rows}
