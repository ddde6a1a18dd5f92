"""Chat flows: the bots an admin defines, validated as a whole on save, attached per channel."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, JsonValue
from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import ApiError, ErrorDetail, invalid_field
from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import (
    Frozen,
    ListQuery,
    Name,
    NotNull,
    Page,
    RowId,
    changes_of,
    found,
    page_of,
)
from engine.automation.catalog import (
    delete_row,
    insert_chat_flow,
    set_channel_flow,
    update_chat_flow,
)
from engine.automation.flows import InvalidFlowError, parse_flow, references
from engine.queries.automation import ChatFlowView, get_known_ids, get_row, list_rows

router = ApiRouter("chat_flows")

_TAKEN = {
    "chat_flows_tenant_id_name_key": "A chat flow with this name already exists.",
    "chat_flows_one_default": "Another chat flow became the default at the same time; retry.",
}
Definition = Annotated[dict[str, JsonValue], Field(max_length=50)]


class ChatFlowIn(Frozen):
    """`definition`: start node, welcome, nodes with messages, options and conditions, retries,
    inactivity, close keywords and test phone (see the README's chat-flow section)."""

    name: Name
    definition: Definition
    is_default: bool = False


class ChatFlowPatch(Frozen):
    name: Annotated[Name | None, NotNull] = None
    definition: Annotated[Definition | None, NotNull] = None
    is_default: Annotated[bool | None, NotNull] = None


class ChannelFlowIn(Frozen):
    """null: the channel runs the tenant's default flow (if any)."""

    chat_flow_id: RowId | None


class ChannelFlowOut(Frozen):
    channel_id: int
    chat_flow_id: int | None


async def checked_definition(
    call: Call[Any, Any], conn: AsyncConnection, definition: dict[str, JsonValue]
) -> dict[str, JsonValue]:
    """The definition as it will be stored, or 422 naming each offending node and field."""
    try:
        flow = parse_flow(definition)
    except InvalidFlowError as exc:
        raise _invalid([(p.field, p.message) for p in exc.problems]) from None
    problems: list[tuple[str, str]] = []
    for table in ("queues", "users"):
        named = [(f, i) for f, t, i in references(flow) if t == table]
        known = await get_known_ids(conn, table, call.tenant_id, [i for _, i in named])
        problems += [(f, f"no {table[:-1]} {i} in this tenant") for f, i in named if i not in known]
    if problems:
        raise _invalid(problems)
    dumped: dict[str, JsonValue] = flow.model_dump(mode="json", exclude_none=True)
    return dumped


def _invalid(problems: list[tuple[str, str]]) -> ApiError:
    details = tuple(ErrorDetail(field=f"definition.{f}", message=m) for f, m in problems)
    names = ", ".join(d.field for d in details)
    return ApiError(422, "invalid_request", f"Invalid chat flow: {names}.", details=details)


@router.get(
    "/api/v1/chat-flows",
    Permission.AUTOMATION_MANAGE,
    query=ListQuery,
    response=Page[ChatFlowView],
    summary="List chat flows",
)
async def list_chat_flows(call: Call[NoBody, ListQuery]) -> Page[ChatFlowView]:
    q = call.query
    async with call.tx() as conn:
        rows = await list_rows(
            conn, ChatFlowView, call.tenant_id, after_id=q.cursor or 0, limit=q.limit + 1
        )
    return page_of(Page[ChatFlowView], rows, q.limit)


@router.get(
    "/api/v1/chat-flows/{id}",
    Permission.AUTOMATION_MANAGE,
    response=ChatFlowView,
    summary="Get a chat flow",
)
async def get_chat_flow(call: Call[NoBody, NoQuery]) -> ChatFlowView:
    async with call.tx() as conn:
        return found(await get_row(conn, ChatFlowView, call.tenant_id, call.id()), "Chat flow")


@router.post(
    "/api/v1/chat-flows",
    Permission.AUTOMATION_MANAGE,
    body=ChatFlowIn,
    response=ChatFlowView,
    status=201,
    summary="Create a chat flow",
    max_body_bytes=512 * 1024,
)
async def create_chat_flow(call: Call[ChatFlowIn, NoQuery]) -> ChatFlowView:
    """422 names the node and field at fault (`definition.nodes[menu].conditions.0.action.node`):
    dangling targets, unreachable nodes, duplicate ids, unknown variables, unknown queues or
    users. `is_default` makes it the tenant's default (the previous one stops being it)."""
    b = call.body
    async with call.tx(conflicts=_TAKEN) as conn:
        definition = await checked_definition(call, conn, b.definition)
        flow_id = await conn.run_sync(
            lambda c: insert_chat_flow(
                c,
                tenant_id=call.tenant_id,
                name=b.name,
                definition=definition,
                is_default=b.is_default,
            )
        )
        return found(await get_row(conn, ChatFlowView, call.tenant_id, flow_id), "Chat flow")


@router.patch(
    "/api/v1/chat-flows/{id}",
    Permission.AUTOMATION_MANAGE,
    body=ChatFlowPatch,
    response=ChatFlowView,
    summary="Change a chat flow",
    max_body_bytes=512 * 1024,
)
async def update_chat_flow_endpoint(call: Call[ChatFlowPatch, NoQuery]) -> ChatFlowView:
    """A new definition is validated as on create. Tickets a bot is handling continue with the
    new definition; one waiting at a node that no longer exists starts over."""
    changes = changes_of(call.body)
    async with call.tx(conflicts=_TAKEN) as conn:
        if call.body.definition is not None:
            changes["definition"] = await checked_definition(call, conn, call.body.definition)
        updated = await conn.run_sync(
            lambda c: update_chat_flow(
                c, tenant_id=call.tenant_id, flow_id=call.id(), changes=changes
            )
        )
        if not updated:
            raise not_found("Chat flow")
        return found(await get_row(conn, ChatFlowView, call.tenant_id, call.id()), "Chat flow")


@router.delete(
    "/api/v1/chat-flows/{id}",
    Permission.AUTOMATION_MANAGE,
    status=204,
    summary="Delete a chat flow",
)
async def delete_chat_flow(call: Call[NoBody, NoQuery]) -> None:
    """Channels running it fall back to the tenant default; bots waiting on it hand over at
    their inactivity deadline."""
    async with call.tx() as conn:
        deleted = await conn.run_sync(
            lambda c: delete_row(c, table="chat_flows", tenant_id=call.tenant_id, row_id=call.id())
        )
    if not deleted:
        raise not_found("Chat flow")


@router.put(
    "/api/v1/channels/{id}/chat-flow",
    Permission.AUTOMATION_MANAGE,
    body=ChannelFlowIn,
    response=ChannelFlowOut,
    summary="Choose the chat flow a channel runs",
)
async def set_channel_chat_flow(call: Call[ChannelFlowIn, NoQuery]) -> ChannelFlowOut:
    """The flow greets new tickets of this channel; null: the tenant's default flow."""
    flow_id = call.body.chat_flow_id
    async with call.tx() as conn:
        known = flow_id is None or await get_row(conn, ChatFlowView, call.tenant_id, flow_id)
        if not known:
            raise invalid_field("chat_flow_id", f"no chat flow {flow_id} in this tenant")
        updated = await conn.run_sync(
            lambda c: set_channel_flow(
                c, tenant_id=call.tenant_id, channel_id=call.id(), flow_id=flow_id
            )
        )
    if not updated:
        raise not_found("Channel")
    return ChannelFlowOut(channel_id=call.id(), chat_flow_id=flow_id)
