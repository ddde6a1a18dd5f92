"""Tags: create, change and delete a tenant's contact labels."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, text

from engine.store.patch import patch_row

# Columns PATCH may set, with the type their bound value is cast to.
TAG_COLUMNS = {"name": "text", "color": "text", "auto_keywords": "text[]"}


def insert_tag(
    conn: Connection, *, tenant_id: int, name: str, color: str | None, auto_keywords: list[str]
) -> int:
    """A new tag; IntegrityError tags_tenant_id_name_key when the name is taken."""
    return int(
        conn.execute(
            text(
                "INSERT INTO tags (tenant_id, name, color, auto_keywords) "
                "VALUES (:t, :name, :color, :kw) RETURNING id"
            ),
            {"t": tenant_id, "name": name, "color": color, "kw": auto_keywords},
        ).scalar_one()
    )


def update_tag(
    conn: Connection, *, tenant_id: int, tag_id: int, changes: Mapping[str, object]
) -> bool:
    """Set the named TAG_COLUMNS; False when no such tag in the tenant."""
    return patch_row(
        conn,
        table="tags",
        tenant_id=tenant_id,
        row_id=tag_id,
        changes=changes,
        columns=TAG_COLUMNS,
    )


def delete_tag(conn: Connection, *, tenant_id: int, tag_id: int) -> bool:
    """Delete the tag (contacts lose it); False when no such tag in the tenant."""
    result = conn.execute(
        text("DELETE FROM tags WHERE tenant_id = :t AND id = :id"), {"t": tenant_id, "id": tag_id}
    )
    return result.rowcount > 0
