"""Queues: create, change and delete them, and set who works each one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, text

from engine.store.patch import patch_row

# Columns PATCH may set, with the type their bound value is cast to.
QUEUE_COLUMNS = {"name": "text", "color": "text", "greeting": "text", "distribution": "text"}


def insert_queue(
    conn: Connection,
    *,
    tenant_id: int,
    name: str,
    color: str | None,
    greeting: str | None,
    distribution: str,
) -> int:
    """A new queue; IntegrityError queues_tenant_id_name_key when the name is taken."""
    return int(
        conn.execute(
            text(
                "INSERT INTO queues (tenant_id, name, color, greeting, distribution) "
                "VALUES (:t, :name, :color, :greeting, :distribution) RETURNING id"
            ),
            {
                "t": tenant_id,
                "name": name,
                "color": color,
                "greeting": greeting,
                "distribution": distribution,
            },
        ).scalar_one()
    )


def update_queue(
    conn: Connection, *, tenant_id: int, queue_id: int, changes: Mapping[str, object]
) -> bool:
    """Set the named QUEUE_COLUMNS; False when no such queue in the tenant."""
    return patch_row(
        conn,
        table="queues",
        tenant_id=tenant_id,
        row_id=queue_id,
        changes=changes,
        columns=QUEUE_COLUMNS,
    )


def replace_queue_members(
    conn: Connection, *, tenant_id: int, queue_id: int, user_ids: Sequence[int]
) -> None:
    """Make `user_ids` (already checked to be the tenant's users) the queue's whole membership."""
    conn.execute(
        text(
            "DELETE FROM user_queues WHERE tenant_id = :t AND queue_id = :q "
            "AND NOT (user_id = ANY(:ids))"
        ),
        {"t": tenant_id, "q": queue_id, "ids": list(user_ids)},
    )
    conn.execute(
        text(
            "INSERT INTO user_queues (tenant_id, user_id, queue_id) "
            "SELECT :t, u, :q FROM unnest(CAST(:ids AS bigint[])) AS u "
            "ON CONFLICT (user_id, queue_id) DO NOTHING"
        ),
        {"t": tenant_id, "q": queue_id, "ids": list(user_ids)},
    )


def lock_queue(conn: Connection, *, tenant_id: int, queue_id: int) -> bool:
    """Lock the queue row for this transaction (membership changes serialise); False if none."""
    row = conn.execute(
        text("SELECT id FROM queues WHERE tenant_id = :t AND id = :id FOR UPDATE"),
        {"t": tenant_id, "id": queue_id},
    ).first()
    return row is not None


def delete_queue(conn: Connection, *, tenant_id: int, queue_id: int) -> bool:
    """Delete the queue: its tickets become unqueued, its members leave it. False if none."""
    result = conn.execute(
        text("DELETE FROM queues WHERE tenant_id = :t AND id = :id"),
        {"t": tenant_id, "id": queue_id},
    )
    return result.rowcount > 0
