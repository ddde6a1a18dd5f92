"""Per-tenant settings: write a key's value, reset it, read one effective value."""

from __future__ import annotations

import json
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, text

from engine.settings_registry import REGISTRY, effective


def upsert_setting(conn: Connection, *, tenant_id: int, key: str, value: JsonValue) -> None:
    """Store `value` (already validated against the registry) for `key`."""
    conn.execute(
        text(
            "INSERT INTO settings (tenant_id, key, value) VALUES (:t, :k, CAST(:v AS jsonb)) "
            "ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
        ),
        {"t": tenant_id, "k": key, "v": json.dumps(value)},
    )


def delete_setting(conn: Connection, *, tenant_id: int, key: str) -> None:
    """Forget the stored value: the registry's default applies again."""
    conn.execute(
        text("DELETE FROM settings WHERE tenant_id = :t AND key = :k"), {"t": tenant_id, "k": key}
    )


def get_setting(conn: Connection, *, tenant_id: int, key: str) -> Any:
    """The typed value in force for `key` (KeyError for a key not in the registry)."""
    if key not in REGISTRY:
        raise KeyError(key)
    row = conn.execute(
        text("SELECT value FROM settings WHERE tenant_id = :t AND key = :k"),
        {"t": tenant_id, "k": key},
    ).first()
    return effective(key, None if row is None else row[0], present=row is not None)
