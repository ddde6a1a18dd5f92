"""Channels: connect, change and disconnect provider accounts. Secrets are write-only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, JsonValue

from api.errors import ApiError
from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.channel_setup import (
    check_split,
    merged_setup,
    no_nul,
    secret_fields,
    validate_setup,
)
from api.resources.common import (
    Clean,
    Frozen,
    ListQuery,
    Name,
    NotNull,
    Page,
    Strip,
    found,
    page_of,
)
from engine.events import ChannelConfig, ChannelType
from engine.queries.channels import ChannelView, get_channel_view, list_channels
from engine.queries.common import IdView, UtcDatetime
from engine.store.channels import (
    channel_in_use,
    delete_channel,
    insert_channel,
    lock_tenant_channel,
    update_channel,
)

router = ApiRouter("channels")

ChannelStatus = Literal["connected", "disconnected", "error"]
# A Literal, not the ChannelType enum: a query parameter's schema must be inline in OpenAPI.
ChannelTypeName = Literal["whatsapp", "messenger", "instagram", "telegram", "sms", "email"]
SetupJson = Annotated[dict[str, JsonValue], Field(max_length=50), AfterValidator(no_nul)]
_TAKEN = {
    "channels_tenant_id_name_key": "A channel with this name already exists.",
    "channels_type_external_id_key": "This provider account is already connected as a channel.",
}


class ChannelListQuery(ListQuery):
    search: Annotated[str, Strip, Field(min_length=1, max_length=100), Clean] | None = None
    type: ChannelTypeName | None = None
    status: ChannelStatus | None = None


class ChannelIn(Frozen):
    """`config` and `secrets` together are what `flowdesk channel create --config` takes."""

    type: ChannelType
    name: Name
    config: SetupJson = {}
    secrets: SetupJson = {}


class ChannelPatch(Frozen):
    """`config` keys replace settings (null: back to default); `secrets` sent replace stored
    ones, the others are kept. An admin pauses a channel with status `disconnected`."""

    name: Annotated[Name | None, NotNull] = None
    status: Annotated[Literal["connected", "disconnected"] | None, NotNull] = None
    config: SetupJson | None = None
    secrets: SetupJson | None = None


class ChannelOut(IdView):
    type: ChannelType
    name: str
    external_id: str
    status: ChannelStatus
    config: ChannelConfig
    has_secrets: dict[str, bool]  # which credentials are set; their values are never returned
    default_queue_id: int | None
    webhook_url: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


@router.get(
    "/api/v1/channels",
    Permission.CHANNELS_READ,
    query=ChannelListQuery,
    response=Page[ChannelOut],
    summary="List channels",
)
async def list_channels_endpoint(call: Call[NoBody, ChannelListQuery]) -> Page[ChannelOut]:
    """The tenant's channels by id; filter by `type`, `status`, part of the name (`search`)."""
    q = call.query
    async with call.tx() as conn:
        rows = await list_channels(
            conn,
            call.tenant_id,
            search=q.search,
            type=None if q.type is None else ChannelType(q.type),
            status=q.status,
            after_id=q.cursor or 0,
            limit=q.limit + 1,
        )
    items = [_out(_base_url(call), row) for row in rows]
    return page_of(Page[ChannelOut], items, q.limit)


@router.get(
    "/api/v1/channels/{id}", Permission.CHANNELS_READ, response=ChannelOut, summary="Get a channel"
)
async def get_channel_endpoint(call: Call[NoBody, NoQuery]) -> ChannelOut:
    async with call.tx() as conn:
        return _out(
            _base_url(call),
            found(await get_channel_view(conn, call.tenant_id, call.id()), "Channel"),
        )


@router.post(
    "/api/v1/channels",
    Permission.CHANNELS_MANAGE,
    body=ChannelIn,
    response=ChannelOut,
    status=201,
    summary="Connect a channel",
)
async def create_channel(call: Call[ChannelIn, NoQuery]) -> ChannelOut:
    """Validated by the channel type's own set-up model, exactly as the CLI does. The answer's
    `webhook_url` is what to register at the provider. 409 when the name or the provider
    account is taken."""
    b = call.body
    check_split(b.type, b.config, b.secrets)
    where = {**{k: "config" for k in b.config}, **{k: "secrets" for k in b.secrets}}
    external_id, config, secrets = validate_setup(b.type, {**b.config, **b.secrets}, where=where)
    async with call.tx(conflicts=_TAKEN) as conn:
        channel_id = await conn.run_sync(
            lambda c: insert_channel(
                c,
                tenant_id=call.tenant_id,
                type=b.type,
                name=b.name,
                external_id=external_id,
                config=config,
                secrets=secrets,
            )
        )
        view = found(await get_channel_view(conn, call.tenant_id, channel_id), "Channel")
    return _out(_base_url(call), view)


@router.patch(
    "/api/v1/channels/{id}",
    Permission.CHANNELS_MANAGE,
    body=ChannelPatch,
    response=ChannelOut,
    summary="Change a channel",
)
async def update_channel_endpoint(call: Call[ChannelPatch, NoQuery]) -> ChannelOut:
    """Changed settings or secrets are validated together with the stored ones."""
    b = call.body
    async with call.tx(conflicts=_TAKEN) as conn:
        channel = await conn.run_sync(
            lambda c: lock_tenant_channel(c, tenant_id=call.tenant_id, channel_id=call.id())
        )
        if channel is None:
            raise not_found("Channel")
        setup = None
        if b.config is not None or b.secrets is not None:
            check_split(channel.type, b.config, b.secrets)
            setup = merged_setup(channel, b.config, b.secrets)
        await conn.run_sync(
            lambda c: update_channel(
                c,
                tenant_id=call.tenant_id,
                channel_id=call.id(),
                name=b.name,
                status=b.status,
                setup=setup,
            )
        )
        view = found(await get_channel_view(conn, call.tenant_id, call.id()), "Channel")
    return _out(_base_url(call), view)


@router.delete(
    "/api/v1/channels/{id}", Permission.CHANNELS_MANAGE, status=204, summary="Delete a channel"
)
async def delete_channel_endpoint(call: Call[NoBody, NoQuery]) -> None:
    """Only a channel nothing refers to yet. Deleting one with tickets or campaigns would erase
    their whole history (the rows cascade), so that is a 409: PATCH its status to
    `disconnected` instead, which keeps the history readable."""
    async with call.tx() as conn:
        if await conn.run_sync(
            lambda c: channel_in_use(c, tenant_id=call.tenant_id, channel_id=call.id())
        ):
            raise ApiError(
                409,
                "conflict",
                "The channel has tickets or campaigns; set its status to disconnected instead.",
            )
        deleted = await conn.run_sync(
            lambda c: delete_channel(c, tenant_id=call.tenant_id, channel_id=call.id())
        )
    if not deleted:
        raise not_found("Channel")


def _base_url(call: Call[Any, Any]) -> str:
    return str(call.deps.settings.BACKEND_URL).rstrip("/")


def _out(base_url: str, view: ChannelView) -> ChannelOut:
    present = set(view.secret_names)
    return ChannelOut(
        id=view.id,
        type=view.type,
        name=view.name,
        external_id=view.external_id,
        status=view.status,
        config=view.config,
        has_secrets={name: name in present for name in secret_fields(view.type)},
        default_queue_id=view.default_queue_id,
        webhook_url=f"{base_url}/webhooks/{view.type.value}/{view.id}",
        created_at=view.created_at,
        updated_at=view.updated_at,
    )
