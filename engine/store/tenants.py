"""Tenants and their users, as the command line creates them."""

from __future__ import annotations

from sqlalchemy import Connection, text


def insert_tenant(conn: Connection, *, name: str, time_zone: str = "UTC") -> int:
    return int(
        conn.execute(
            text("INSERT INTO tenants (name, time_zone) VALUES (:n, :tz) RETURNING id"),
            {"n": name, "tz": time_zone},
        ).scalar_one()
    )


def insert_user(
    conn: Connection, *, tenant_id: int, name: str, email: str, password_hash: str, role: str
) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO users (tenant_id, name, email, password_hash, role) "
                "VALUES (:t, :n, :e, :h, :r) RETURNING id"
            ),
            {"t": tenant_id, "n": name, "e": email, "h": password_hash, "r": role},
        ).scalar_one()
    )


def tenant_exists(conn: Connection, tenant_id: int) -> bool:
    return bool(
        conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = :id)"), {"id": tenant_id}
        ).scalar_one()
    )


def update_tenant(
    conn: Connection,
    *,
    tenant_id: int,
    name: str | None = None,
    status: str | None = None,
    time_zone: str | None = None,
) -> bool:
    """Set what is given (None: unchanged); False when there is no such tenant.

    A suspended tenant's users are refused at their next request (api.auth checks status).
    """
    result = conn.execute(
        text(
            "UPDATE tenants SET name = coalesce(:n, name), status = coalesce(:s, status), "
            "time_zone = coalesce(:tz, time_zone), updated_at = now() WHERE id = :id"
        ),
        {"id": tenant_id, "n": name, "s": status, "tz": time_zone},
    )
    return result.rowcount > 0
