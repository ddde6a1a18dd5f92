"""API client reads: the admin's list and detail, and the token check behind every client call."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import UtcDatetime

ClientStatus = Literal["active", "revoked"]


class ApiClientView(BaseModel):
    """An API client as admins see it: never the token, only its first characters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    name: str
    permissions: tuple[str, ...]
    token_prefix: str | None
    status: ClientStatus
    created_by: int | None
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class ClientCredential(BaseModel):
    """A live client token's owner, as authentication needs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    tenant_id: int
    permissions: frozenset[str]
    acting_user_id: int
    last_used_stale: bool


_COLUMNS = """
    id, name, permissions, token_prefix, created_by, created_at, last_used_at, revoked_at,
    CASE WHEN revoked_at IS NULL THEN 'active' ELSE 'revoked' END AS status
"""

_LIST = text(
    f"""
    SELECT {_COLUMNS}
    FROM api_clients
    WHERE tenant_id = :tenant_id
      AND (CAST(:status AS text) IS NULL
           OR (CAST(:status AS text) = 'active') = (revoked_at IS NULL))
      AND (CAST(:pattern AS text) IS NULL OR name ILIKE CAST(:pattern AS text) ESCAPE '\\')
      AND (CAST(:before_id AS bigint) IS NULL OR id < CAST(:before_id AS bigint))
    ORDER BY id DESC
    LIMIT :limit
    """  # noqa: S608 (a constant column list, no user input)
)

_GET = text(
    f"SELECT {_COLUMNS} FROM api_clients WHERE tenant_id = :tenant_id AND id = :id"  # noqa: S608
)

# Before the token is checked nothing names the tenant, so this runs in system scope. The
# client acts as the admin who created it: a client whose creator is gone stops working.
_BY_TOKEN = text(
    """
    SELECT c.id, c.tenant_id, c.permissions, c.created_by AS acting_user_id,
           (c.last_used_at IS NULL OR c.last_used_at < now() - interval '1 minute')
             AS last_used_stale
    FROM api_clients c
    JOIN tenants t ON t.id = c.tenant_id AND t.status = 'active'
    JOIN users u ON u.id = c.created_by AND u.tenant_id = c.tenant_id
    WHERE c.token_hash = :token_hash AND c.revoked_at IS NULL
    """
)


def _like_pattern(search: str | None) -> str | None:
    if search is None:
        return None
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_api_clients(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    status: ClientStatus | None,
    search: str | None,
    limit: int,
    before_id: int | None,
) -> list[ApiClientView]:
    """The tenant's clients, newest first, after `before_id`; `limit` rows at most. Read-only."""
    params = {
        "tenant_id": tenant_id,
        "status": status,
        "pattern": _like_pattern(search),
        "before_id": before_id,
        "limit": limit,
    }
    rows = (await conn.execute(_LIST, params)).mappings().all()
    return [ApiClientView.model_validate(dict(r)) for r in rows]


async def get_api_client(
    conn: AsyncConnection, tenant_id: int, client_id: int
) -> ApiClientView | None:
    """One of the tenant's clients, or None. Read-only."""
    row = (
        (await conn.execute(_GET, {"tenant_id": tenant_id, "id": client_id}))
        .mappings()
        .one_or_none()
    )
    return None if row is None else ApiClientView.model_validate(dict(row))


async def get_client_by_token(conn: AsyncConnection, token_hash: str) -> ClientCredential | None:
    """The live client behind a token digest in an active tenant, or None. System scope."""
    row = (await conn.execute(_BY_TOKEN, {"token_hash": token_hash})).mappings().one_or_none()
    if row is None:
        return None
    return ClientCredential(
        id=row["id"],
        tenant_id=row["tenant_id"],
        permissions=frozenset(row["permissions"]),
        acting_user_id=row["acting_user_id"],
        last_used_stale=row["last_used_stale"],
    )
