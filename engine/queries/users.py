"""User look-ups for authentication: login by e-mail, token revocation checks, own account."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.security import Role


class LoginUser(BaseModel):
    """The row a login attempt is checked against. Holds the hash: never serialise it out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    tenant_id: int
    name: str
    role: Role
    password_hash: str
    token_version: int
    totp_enabled: bool = False
    totp_secret: str | None = None


class AccountUser(BaseModel):
    """A signed-in user's own security state. Holds secrets: never serialise it out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    tenant_id: int
    name: str
    email: str
    role: Role
    password_hash: str
    token_version: int
    totp_enabled: bool
    totp_secret: str | None
    backup_codes_left: int


# Login precedes knowing the tenant, so this is the one query not narrowed by tenant_id;
# lower(email) matches the platform-wide unique index users_email_key.
_LOGIN_USER = text(
    """
    SELECT u.id, u.tenant_id, u.name, u.role, u.password_hash, u.token_version,
           u.totp_enabled, u.totp_secret
    FROM users u
    JOIN tenants t ON t.id = u.tenant_id
    WHERE lower(u.email) = lower(:email) AND t.status = 'active'
    """
)

_ACCOUNT = text(
    """
    SELECT u.id, u.tenant_id, u.name, u.email, u.role, u.password_hash, u.token_version,
           u.totp_enabled, u.totp_secret, cardinality(u.backup_code_hashes) AS backup_codes_left
    FROM users u
    WHERE u.tenant_id = :tenant_id AND u.id = :user_id
    """
)

_TOKEN_VERSION = text(
    """
    SELECT u.token_version
    FROM users u
    JOIN tenants t ON t.id = u.tenant_id AND t.id = :tenant_id
    WHERE u.tenant_id = :tenant_id AND u.id = :user_id AND t.status = 'active'
    """
)


async def get_user_for_login(conn: AsyncConnection, email: str) -> LoginUser | None:
    """The user with this e-mail (case-insensitive) in an active tenant, or None.

    `conn` must be in a system-scoped transaction (`async_system_tx`). Read-only.
    """
    row = (await conn.execute(_LOGIN_USER, {"email": email})).mappings().one_or_none()
    if row is None:
        return None
    return LoginUser.model_validate(dict(row))


async def get_user_token_version(conn: AsyncConnection, tenant_id: int, user_id: int) -> int | None:
    """The user's current token_version, or None when the user or its tenant is gone/suspended.

    Tokens carrying an older version are revoked. Read-only.
    """
    value = (
        await conn.execute(_TOKEN_VERSION, {"tenant_id": tenant_id, "user_id": user_id})
    ).scalar_one_or_none()
    return None if value is None else int(value)


async def get_account(conn: AsyncConnection, tenant_id: int, user_id: int) -> AccountUser | None:
    """The user's own security state (hash, token version, TOTP), or None. Read-only."""
    row = (
        (await conn.execute(_ACCOUNT, {"tenant_id": tenant_id, "user_id": user_id}))
        .mappings()
        .one_or_none()
    )
    return None if row is None else AccountUser.model_validate(dict(row))
