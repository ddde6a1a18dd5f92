"""Channels: a tenant's connections to providers, looked up by id or provider address."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.events import ChannelConfig, ChannelConnection, ChannelSecrets, ChannelType, Frozen


class Channel(Frozen):
    id: int
    tenant_id: int
    type: ChannelType
    name: str
    external_id: str
    status: str
    secrets: ChannelSecrets
    config: ChannelConfig = ChannelConfig()

    def connection(self) -> ChannelConnection:
        """What an adapter needs to talk to the provider for this channel."""
        return ChannelConnection(
            id=self.id,
            tenant_id=self.tenant_id,
            type=self.type,
            external_id=self.external_id,
            config=self.config,
            secrets=self.secrets,
        )


_SELECT = (
    "SELECT id, tenant_id, type, name, external_id, status, secrets::text, config::text "
    "FROM channels"
)


def _channel(row: Sequence[object]) -> Channel:
    return Channel(
        id=int(str(row[0])),
        tenant_id=int(str(row[1])),
        type=ChannelType(str(row[2])),
        name=str(row[3]),
        external_id=str(row[4]),
        status=str(row[5]),
        secrets=ChannelSecrets.model_validate_json(str(row[6])),
        config=ChannelConfig.model_validate_json(str(row[7])),
    )


def get_channel(conn: Connection, channel_id: int) -> Channel | None:
    """A channel by id (system scope)."""
    row = conn.execute(text(f"{_SELECT} WHERE id = :id"), {"id": channel_id}).first()
    return None if row is None else _channel(row)


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
    config: ChannelConfig,
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
                "config": config.model_dump_json(exclude_none=True),
                "secrets": secrets.model_dump_json(exclude_none=True),
            },
        ).scalar_one()
    )
