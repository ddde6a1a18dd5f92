"""Tenants as the platform operator sees them (system scope: the one cross-tenant read model)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import IdView, UtcDatetime, contains_pattern

TenantStatus = Literal["active", "suspended"]


class TenantView(IdView):
    name: str
    status: TenantStatus
    time_zone: str
    user_count: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


_SELECT = """
    SELECT t.id, t.name, t.status, t.time_zone, t.created_at, t.updated_at,
           (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS user_count
    FROM tenants t
    WHERE true
"""
_GET = text(_SELECT + " AND t.id = :id")
_SEARCH = " AND t.name ILIKE :pattern"
_STATUS = " AND t.status = :status"
_PAGE = " AND t.id > :after ORDER BY t.id LIMIT :limit"


async def list_tenants(
    conn: AsyncConnection,
    *,
    search: str | None,
    status: TenantStatus | None,
    after_id: int,
    limit: int,
) -> list[TenantView]:
    """Up to `limit` tenants with id > `after_id`. `conn` is in a system-scoped transaction."""
    sql = _SELECT
    params: dict[str, object] = {"after": after_id, "limit": limit}
    if search is not None:  # fixed fragments only; every value is bound
        sql += _SEARCH
        params["pattern"] = contains_pattern(search)
    if status is not None:
        sql += _STATUS
        params["status"] = status
    rows = (await conn.execute(text(sql + _PAGE), params)).mappings().all()
    return [TenantView.model_validate(dict(r)) for r in rows]


async def get_tenant(conn: AsyncConnection, tenant_id: int) -> TenantView | None:
    """One tenant. `conn` is in a system-scoped transaction."""
    row = (await conn.execute(_GET, {"id": tenant_id})).mappings().one_or_none()
    return None if row is None else TenantView.model_validate(dict(row))
