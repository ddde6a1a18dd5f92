"""Fast replies (canned answers an agent inserts by shortcut), as the API lists them."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import IdView, View, contains_pattern

MediaKind = Literal["image", "audio", "video", "document"]


class FastReplyMedia(View):
    url: str
    type: MediaKind


class FastReplyView(IdView):
    shortcut: str
    body: str
    media: tuple[FastReplyMedia, ...]


_SELECT = "SELECT id, shortcut, body, media FROM fast_replies WHERE tenant_id = :t"
_LIST = text(_SELECT + " AND id > :after ORDER BY id LIMIT :limit")
_SEARCH = text(
    _SELECT
    + " AND id > :after AND (shortcut ILIKE :pattern OR body ILIKE :pattern)"
    + " ORDER BY id LIMIT :limit"
)
_GET = text(_SELECT + " AND id = :id")


async def list_fast_replies(
    conn: AsyncConnection, tenant_id: int, *, search: str | None, after_id: int, limit: int
) -> list[FastReplyView]:
    """Up to `limit` fast replies with id > `after_id`; `search` matches shortcut or body."""
    params: dict[str, object] = {"t": tenant_id, "after": after_id, "limit": limit}
    sql = _LIST
    if search is not None:
        sql, params["pattern"] = _SEARCH, contains_pattern(search)
    rows = (await conn.execute(sql, params)).mappings().all()
    return [FastReplyView.model_validate(dict(r)) for r in rows]


async def get_fast_reply(
    conn: AsyncConnection, tenant_id: int, reply_id: int
) -> FastReplyView | None:
    row = (await conn.execute(_GET, {"t": tenant_id, "id": reply_id})).mappings().one_or_none()
    return None if row is None else FastReplyView.model_validate(dict(row))
