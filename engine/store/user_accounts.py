"""Users as admins manage them: change, delete, end sessions, keep at least one admin."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, text

from engine.security import Role
from engine.store.auth import end_sessions
from engine.store.patch import patch_row

# Columns PATCH may set, with the type their bound value is cast to.
USER_COLUMNS = {"name": "text", "role": "text", "max_open_tickets": "integer", "online": "boolean"}
ADMIN_ROLES = ("admin", "super")


def lock_user(conn: Connection, *, tenant_id: int, user_id: int) -> Role | None:
    """Lock the user's row for this transaction and return their role; None if no such user."""
    row = conn.execute(
        text("SELECT role FROM users WHERE tenant_id = :t AND id = :id FOR UPDATE"),
        {"t": tenant_id, "id": user_id},
    ).first()
    if row is None:
        return None
    role: Role = row[0]
    return role


def lock_admin_ids(conn: Connection, *, tenant_id: int) -> set[int]:
    """Lock and return the tenant's admins (admin or super).

    Two admins demoting each other at once queue up here, so the second sees the first's
    change and the tenant is never left without an admin.
    """
    rows = conn.execute(
        text(
            "SELECT id FROM users WHERE tenant_id = :t AND role = ANY(:roles) "
            "ORDER BY id FOR UPDATE"
        ),
        {"t": tenant_id, "roles": list(ADMIN_ROLES)},
    ).all()
    return {int(r[0]) for r in rows}


def update_user(
    conn: Connection, *, tenant_id: int, user_id: int, changes: Mapping[str, object]
) -> bool:
    """Set the named USER_COLUMNS; False when no such user in the tenant.

    A role change also ends the user's sessions: their tokens carry the old role.
    """
    changed = patch_row(
        conn,
        table="users",
        tenant_id=tenant_id,
        row_id=user_id,
        changes=changes,
        columns=USER_COLUMNS,
        touch=True,
    )
    if changed and "role" in changes:
        end_sessions(conn, tenant_id=tenant_id, user_id=user_id)
    return changed


def delete_user(conn: Connection, *, tenant_id: int, user_id: int) -> bool:
    """Delete the user: their tickets become unassigned, wallets and queue seats go."""
    result = conn.execute(
        text("DELETE FROM users WHERE tenant_id = :t AND id = :id"),
        {"t": tenant_id, "id": user_id},
    )
    return result.rowcount > 0
