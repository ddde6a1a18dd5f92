"""Channels: a tenant's connections to providers, looked up by id or provider address."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.events import ChannelConfig, ChannelConnection, ChannelSecrets, ChannelType, Frozen
from engine.secrets_box import open_secrets, seal_secrets
from engine.store.patch import patch_row


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
        secrets=open_secrets(str(row[6])),
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
                "secrets": seal_secrets(secrets),
            },
        ).scalar_one()
    )


# Columns the channel API may set, with the type their bound value is cast to.
CHANNEL_COLUMNS = {
    "name": "text",
    "status": "text",
    "external_id": "text",
    "config": "jsonb",
    "secrets": "jsonb",
}


def lock_tenant_channel(conn: Connection, *, tenant_id: int, channel_id: int) -> Channel | None:
    """The tenant's channel with its secrets, locked for this transaction; None if none."""
    row = conn.execute(
        text(f"{_SELECT} WHERE tenant_id = :t AND id = :id FOR UPDATE"),
        {"t": tenant_id, "id": channel_id},
    ).first()
    return None if row is None else _channel(row)


def update_channel(
    conn: Connection,
    *,
    tenant_id: int,
    channel_id: int,
    name: str | None = None,
    status: str | None = None,
    setup: tuple[str, ChannelConfig, ChannelSecrets] | None = None,
) -> bool:
    """Set what is given (`setup`: external_id, config, secrets as validated); False if none."""
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = name
    if status is not None:
        changes["status"] = status
    if setup is not None:
        external_id, config, secrets = setup
        changes["external_id"] = external_id
        changes["config"] = config.model_dump_json(exclude_none=True)
        changes["secrets"] = seal_secrets(secrets)
    return patch_row(
        conn,
        table="channels",
        tenant_id=tenant_id,
        row_id=channel_id,
        changes=changes,
        columns=CHANNEL_COLUMNS,
        touch=True,
    )


def get_secrets_batch(conn: Connection, *, after_id: int, limit: int) -> list[tuple[int, str]]:
    """(id, stored secrets column) of up to `limit` channels with id > `after_id`, locked."""
    rows = conn.execute(
        text(
            "SELECT id, secrets::text FROM channels WHERE id > :after "
            "ORDER BY id LIMIT :limit FOR UPDATE"
        ),
        {"after": after_id, "limit": limit},
    ).all()
    return [(int(r[0]), str(r[1])) for r in rows]


def set_stored_secrets(conn: Connection, *, channel_id: int, column: str) -> None:
    """Replace the stored (already sealed) secrets column of one channel."""
    conn.execute(
        text("UPDATE channels SET secrets = CAST(:s AS jsonb) WHERE id = :id"),
        {"s": column, "id": channel_id},
    )


def channel_in_use(conn: Connection, *, tenant_id: int, channel_id: int) -> bool:
    """Whether tickets or campaigns refer to the channel (deleting it would erase them)."""
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM tickets WHERE tenant_id = :t AND channel_id = :id) "
                "OR EXISTS (SELECT 1 FROM campaigns WHERE tenant_id = :t AND channel_id = :id)"
            ),
            {"t": tenant_id, "id": channel_id},
        ).scalar_one()
    )


def delete_channel(conn: Connection, *, tenant_id: int, channel_id: int) -> bool:
    """Delete the channel row; False when there is none. Check `channel_in_use` first."""
    result = conn.execute(
        text("DELETE FROM channels WHERE tenant_id = :t AND id = :id"),
        {"t": tenant_id, "id": channel_id},
    )
    return result.rowcount > 0
