"""Fast replies: create, change and delete a tenant's canned answers."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Connection, text

from engine.store.patch import patch_row

# Columns PATCH may set, with the type their bound value is cast to (media: a JSON string).
FAST_REPLY_COLUMNS = {"shortcut": "text", "body": "text", "media": "jsonb"}


def insert_fast_reply(
    conn: Connection, *, tenant_id: int, shortcut: str, body: str, media: list[dict[str, str]]
) -> int:
    """A new fast reply; IntegrityError fast_replies_tenant_id_shortcut_key if the shortcut
    is taken."""
    return int(
        conn.execute(
            text(
                "INSERT INTO fast_replies (tenant_id, shortcut, body, media) "
                "VALUES (:t, :shortcut, :body, CAST(:media AS jsonb)) RETURNING id"
            ),
            {"t": tenant_id, "shortcut": shortcut, "body": body, "media": json.dumps(media)},
        ).scalar_one()
    )


def update_fast_reply(
    conn: Connection, *, tenant_id: int, reply_id: int, changes: Mapping[str, object]
) -> bool:
    """Set the named FAST_REPLY_COLUMNS (`media` as a list, stored as JSON); False if none."""
    values = dict(changes)
    if "media" in values:
        values["media"] = json.dumps(values["media"])
    return patch_row(
        conn,
        table="fast_replies",
        tenant_id=tenant_id,
        row_id=reply_id,
        changes=values,
        columns=FAST_REPLY_COLUMNS,
    )


def delete_fast_reply(conn: Connection, *, tenant_id: int, reply_id: int) -> bool:
    result = conn.execute(
        text("DELETE FROM fast_replies WHERE tenant_id = :t AND id = :id"),
        {"t": tenant_id, "id": reply_id},
    )
    return result.rowcount > 0
