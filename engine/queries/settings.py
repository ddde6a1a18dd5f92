"""A tenant's settings with their effective values (stored, else the registry's default)."""

from __future__ import annotations

from pydantic import JsonValue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import View
from engine.settings_registry import REGISTRY, effective


class SettingView(View):
    key: str
    value: JsonValue
    default: JsonValue
    is_default: bool  # nothing stored: the default is in force
    description: str


_STORED = text("SELECT key, value FROM settings WHERE tenant_id = :t AND key = ANY(:keys)")


async def get_settings(
    conn: AsyncConnection, tenant_id: int, keys: list[str] | None = None
) -> list[SettingView]:
    """Every registered key (or just `keys`), in registry order. Read-only."""
    wanted = [k for k in REGISTRY if keys is None or k in keys]
    stored = await stored_settings(conn, tenant_id, wanted)
    views = []
    for key in wanted:
        setting = REGISTRY[key]
        value = effective(key, stored.get(key), present=key in stored)
        views.append(
            SettingView(
                key=key,
                value=setting.to_json(value),
                default=setting.to_json(setting.default),
                is_default=key not in stored,
                description=setting.description,
            )
        )
    return views


async def stored_settings(
    conn: AsyncConnection, tenant_id: int, keys: list[str]
) -> dict[str, JsonValue]:
    """What the tenant stored for `keys` (a key with nothing stored is absent). Read-only."""
    rows = (await conn.execute(_STORED, {"t": tenant_id, "keys": keys})).all()
    return {str(r[0]): r[1] for r in rows}
