"""Sessions and sign-in factors: refresh tokens, token versions, passwords, TOTP, backup codes."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import Connection, text

from engine.events import Frozen
from engine.security import Role

RotationOutcome = Literal["rotated", "reused", "expired", "revoked", "unknown"]


class Rotation(Frozen):
    """What presenting a refresh token did. Only `rotated` carries a live session."""

    outcome: RotationOutcome
    tenant_id: int | None = None
    user_id: int | None = None
    role: Role | None = None
    name: str | None = None
    token_version: int | None = None


def insert_refresh_token(
    conn: Connection,
    *,
    tenant_id: int,
    user_id: int,
    token_hash: str,
    token_version: int,
    ttl_s: int,
    family_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Store a refresh token's digest; a new family unless `family_id` continues one."""
    family = family_id or uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO refresh_tokens (tenant_id, user_id, family_id, token_hash, "
            "token_version, expires_at) "
            "VALUES (:t, :u, :f, :h, :v, now() + make_interval(secs => :ttl))"
        ),
        {
            "t": tenant_id,
            "u": user_id,
            "f": family,
            "h": token_hash,
            "v": token_version,
            "ttl": ttl_s,
        },
    )
    return family


# The token row is locked, so two requests presenting the same token are serialised: the
# second one sees it used and is treated as a replay.
_PRESENTED = text(
    """
    SELECT rt.id, rt.tenant_id, rt.user_id, rt.family_id, rt.token_version,
           rt.used_at IS NOT NULL OR rt.revoked_at IS NOT NULL AS spent,
           rt.expires_at <= now() AS expired,
           u.token_version AS current_version, u.role, u.name, t.status = 'active' AS active
    FROM refresh_tokens rt
    JOIN users u ON u.id = rt.user_id AND u.tenant_id = rt.tenant_id
    JOIN tenants t ON t.id = rt.tenant_id
    WHERE rt.token_hash = :h
    FOR UPDATE OF rt
    """
)


def rotate_refresh_token(
    conn: Connection, *, token_hash: str, new_token_hash: str, ttl_s: int
) -> Rotation:
    """Spend a refresh token and store its successor in the same family.

    A token that was already used or revoked is a replay (a stolen copy, or the thief's
    copy used first): the whole family is revoked. A token of an older token_version (the
    user logged out or changed password) or a suspended tenant is refused the same way.
    System scope: the token alone names its tenant.
    """
    row = conn.execute(_PRESENTED, {"h": token_hash}).mappings().first()
    if row is None:
        return Rotation(outcome="unknown")
    if row["spent"]:
        revoke_family(conn, family_id=row["family_id"])
        return Rotation(outcome="reused", tenant_id=row["tenant_id"], user_id=row["user_id"])
    if row["token_version"] != row["current_version"] or not row["active"]:
        revoke_family(conn, family_id=row["family_id"])
        return Rotation(outcome="revoked", tenant_id=row["tenant_id"], user_id=row["user_id"])
    if row["expired"]:
        return Rotation(outcome="expired", tenant_id=row["tenant_id"], user_id=row["user_id"])
    conn.execute(
        text("UPDATE refresh_tokens SET used_at = now() WHERE id = :id"), {"id": row["id"]}
    )
    insert_refresh_token(
        conn,
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        token_hash=new_token_hash,
        token_version=row["token_version"],
        ttl_s=ttl_s,
        family_id=row["family_id"],
    )
    return Rotation(
        outcome="rotated",
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        role=row["role"],
        name=row["name"],
        token_version=row["token_version"],
    )


def revoke_family(conn: Connection, *, family_id: uuid.UUID) -> int:
    """Revoke every live token descended from one login. Returns how many."""
    result = conn.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now() "
            "WHERE family_id = :f AND revoked_at IS NULL"
        ),
        {"f": family_id},
    )
    return result.rowcount


def end_sessions(conn: Connection, *, tenant_id: int, user_id: int) -> int:
    """Bump the user's token_version and revoke their refresh tokens: every access and refresh
    token they hold stops working. Returns the new token_version."""
    conn.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now() "
            "WHERE tenant_id = :t AND user_id = :u AND revoked_at IS NULL"
        ),
        {"t": tenant_id, "u": user_id},
    )
    return int(
        conn.execute(
            text(
                "UPDATE users SET token_version = token_version + 1, updated_at = now() "
                "WHERE tenant_id = :t AND id = :u RETURNING token_version"
            ),
            {"t": tenant_id, "u": user_id},
        ).scalar_one()
    )


def set_password(conn: Connection, *, tenant_id: int, user_id: int, password_hash: str) -> int:
    """Replace the password hash and end every session. Returns the new token_version."""
    conn.execute(
        text(
            "UPDATE users SET password_hash = :h, password_changed_at = now() "
            "WHERE tenant_id = :t AND id = :u"
        ),
        {"h": password_hash, "t": tenant_id, "u": user_id},
    )
    return end_sessions(conn, tenant_id=tenant_id, user_id=user_id)


def set_pending_totp_secret(conn: Connection, *, tenant_id: int, user_id: int, secret: str) -> bool:
    """Store a new, not yet enabled TOTP secret; False when TOTP is already enabled."""
    result = conn.execute(
        text(
            "UPDATE users SET totp_secret = :s, updated_at = now() "
            "WHERE tenant_id = :t AND id = :u AND NOT totp_enabled"
        ),
        {"s": secret, "t": tenant_id, "u": user_id},
    )
    return result.rowcount == 1


def enable_totp(
    conn: Connection, *, tenant_id: int, user_id: int, secret: str, backup_hashes: list[str]
) -> bool:
    """Turn TOTP on with fresh backup codes, if `secret` is still the pending one."""
    result = conn.execute(
        text(
            "UPDATE users SET totp_enabled = true, backup_code_hashes = :b, updated_at = now() "
            "WHERE tenant_id = :t AND id = :u AND totp_secret = :s AND NOT totp_enabled"
        ),
        {"b": backup_hashes, "t": tenant_id, "u": user_id, "s": secret},
    )
    return result.rowcount == 1


def disable_totp(conn: Connection, *, tenant_id: int, user_id: int) -> bool:
    """Turn TOTP off and forget its secret and backup codes. False when it was off."""
    result = conn.execute(
        text(
            "UPDATE users SET totp_enabled = false, totp_secret = NULL, "
            "backup_code_hashes = '{}', updated_at = now() "
            "WHERE tenant_id = :t AND id = :u AND (totp_enabled OR totp_secret IS NOT NULL)"
        ),
        {"t": tenant_id, "u": user_id},
    )
    return result.rowcount == 1


def consume_backup_code(conn: Connection, *, tenant_id: int, user_id: int, code_hash: str) -> bool:
    """Spend one backup code; False when it is not (or no longer) one of the user's."""
    result = conn.execute(
        text(
            "UPDATE users SET backup_code_hashes = array_remove(backup_code_hashes, :h) "
            "WHERE tenant_id = :t AND id = :u AND :h = ANY(backup_code_hashes)"
        ),
        {"h": code_hash, "t": tenant_id, "u": user_id},
    )
    return result.rowcount == 1
