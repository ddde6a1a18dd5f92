"""Channels: a tenant's connections to providers, looked up by id or provider address."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.events import ChannelSecrets, ChannelType, Frozen


class Channel(Frozen):
    id: int
    tenant_id: int
    type: ChannelType
    name: str
    external_id: str
    status: str
    secrets: ChannelSecrets
    api_base_url: str | None = None


_SELECT = (
    "SELECT id, tenant_id, type, name, external_id, status, secrets::text, config::text "
    "FROM channels"
)


def _channel(row: Sequence[object]) -> Channel:
    config = json.loads(str(row[7]))
    return Channel(
        id=int(str(row[0])),
        tenant_id=int(str(row[1])),
        type=ChannelType(str(row[2])),
        name=str(row[3]),
        external_id=str(row[4]),
        status=str(row[5]),
        secrets=ChannelSecrets.model_validate_json(str(row[6])),
        api_base_url=config.get("api_base_url"),
    )


async def get_channel_async(conn: AsyncConnection, channel_id: int) -> Channel | None:
    """A channel by id (system scope: the webhook URL names it before the tenant is known)."""
    row = (await conn.execute(text(f"{_SELECT} WHERE id = :id"), {"id": channel_id})).first()
    return None if row is None else _channel(row)


async def get_tenant_channels_by_address_async(
    conn: AsyncConnection, *, tenant_id: int, type: ChannelType, external_ids: Sequence[str]
) -> list[Channel]:
    """The tenant's channels of `type` among the given provider addresses."""
    rows = (
        await conn.execute(
            text(f"{_SELECT} WHERE tenant_id = :t AND type = :type AND external_id = ANY(:ids)"),
            {"t": tenant_id, "type": type.value, "ids": list(external_ids)},
        )
    ).all()
    return [_channel(r) for r in rows]


def insert_channel(
    conn: Connection,
    *,
    tenant_id: int,
    type: ChannelType,
    name: str,
    external_id: str,
    config: dict[str, str],
    secrets: ChannelSecrets,
) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO channels (tenant_id, type, name, external_id, config, secrets) "
                "VALUES (:t, :type, :name, :ext, CAST(:config AS jsonb), CAST(:secrets AS jsonb)) "
                "RETURNING id"
            ),
            {
                "t": tenant_id,
                "type": type.value,
                "name": name,
                "ext": external_id,
                "config": json.dumps(config),
                "secrets": secrets.model_dump_json(exclude_none=True),
            },
        ).scalar_one()
    )
