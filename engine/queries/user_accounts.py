"""The tenant's users as the API shows them: never a password hash, TOTP secret or backup code."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import IdView, UtcDatetime, contains_pattern
from engine.security import Role


class UserView(IdView):
    name: str
    email: str
    role: Role
    online: bool
    last_seen_at: UtcDatetime | None
    max_open_tickets: int | None
    totp_enabled: bool
    queue_ids: tuple[int, ...]
    created_at: UtcDatetime
    updated_at: UtcDatetime


# The column list is spelled out so that a secret column can never ride along with `*`.
_SELECT = """
    SELECT u.id, u.name, u.email, u.role, u.online, u.last_seen_at, u.max_open_tickets,
           u.totp_enabled, u.created_at, u.updated_at,
           coalesce((SELECT array_agg(uq.queue_id ORDER BY uq.queue_id) FROM user_queues uq
                     WHERE uq.user_id = u.id AND uq.tenant_id = :t), '{}') AS queue_ids
    FROM users u
    WHERE u.tenant_id = :t
"""
_GET = text(_SELECT + " AND u.id = :id")
_KNOWN = text("SELECT id FROM users WHERE tenant_id = :t AND id = ANY(:ids)")
_SEARCH = " AND (u.name ILIKE :pattern OR u.email ILIKE :pattern)"
_ROLE = " AND u.role = :role"
_PAGE = " AND u.id > :after ORDER BY u.id LIMIT :limit"


async def list_users(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    search: str | None,
    role: Role | None,
    after_id: int,
    limit: int,
) -> list[UserView]:
    """Up to `limit` users with id > `after_id`, by id; `search` matches name or e-mail."""
    sql = _SELECT
    params: dict[str, object] = {"t": tenant_id, "after": after_id, "limit": limit}
    if search is not None:  # fixed fragments only; every value is bound
        sql += _SEARCH
        params["pattern"] = contains_pattern(search)
    if role is not None:
        sql += _ROLE
        params["role"] = role
    rows = (await conn.execute(text(sql + _PAGE), params)).mappings().all()
    return [UserView.model_validate(dict(r)) for r in rows]


async def get_user(conn: AsyncConnection, tenant_id: int, user_id: int) -> UserView | None:
    row = (await conn.execute(_GET, {"t": tenant_id, "id": user_id})).mappings().one_or_none()
    return None if row is None else UserView.model_validate(dict(row))


async def get_known_user_ids(conn: AsyncConnection, tenant_id: int, ids: Sequence[int]) -> set[int]:
    """Which of `ids` are users of this tenant."""
    rows = await conn.execute(_KNOWN, {"t": tenant_id, "ids": list(ids)})
    return {int(r[0]) for r in rows}
