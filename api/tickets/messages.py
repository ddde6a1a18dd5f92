"""A ticket's messages: read them, send or schedule one, edit, cancel or delete one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.outbound import change_message
from adapters.registry import can_change_sent
from api.errors import ApiError, invalid_field
from api.framework import MAX_BIGINT, ApiRouter, Call, NoBody, NoQuery, conflict, not_found
from api.rbac import Permission, may
from api.resources.common import Clean, clean_text
from api.tickets.common import after_commit, visible_ticket
from engine.errors import NotFoundError
from engine.events import template_refusal
from engine.queries.common import Instant
from engine.queries.tickets import (
    MessagePage,
    MessageView,
    get_message,
    get_message_ticket_id,
    list_messages,
)
from engine.store.message_changes import ChangeKind, request_change
from engine.store.scheduled_messages import (
    MessageChange,
    MessageStateError,
    mark_message_cancelled,
    mark_scheduled_body,
)
from pipelines.outbound import RecordedSend, SendRequest, record_send
from pipelines.outbound.request import TemplateRequest

router = ApiRouter("messages")

MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_SCHEDULE_AHEAD = timedelta(days=30)


class MessageListQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    after_id: int | None = Field(default=None, ge=0, le=MAX_BIGINT)


class TicketMessageIn(SendRequest):
    """A reply: text, media by URL or a template, now or at `send_at`."""

    send_at: Instant | None = Field(
        default=None,
        description="Schedule instead of sending now: a future time with its UTC offset, "
        "at most 30 days ahead.",
    )

    # PostgreSQL refuses NUL and UTF-8 cannot carry a lone surrogate: without these checks
    # such text would reach the database and answer 500 instead of 422.
    @field_validator("body", "filename")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value)

    @field_validator("template")
    @classmethod
    def _storable_template(cls, value: TemplateRequest | None) -> TemplateRequest | None:
        if value is not None:
            for text in (value.name, value.language, *value.parameters):
                clean_text(text)
        return value

    @field_validator("send_at")
    @classmethod
    def _within_window(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        now = datetime.now(UTC)
        if value <= now:
            raise ValueError("must be in the future")
        if value > now + MAX_SCHEDULE_AHEAD:
            raise ValueError("must be at most 30 days ahead")
        return value


class MessageEditIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    body: Annotated[str, StringConstraints(min_length=1, max_length=4096), Clean]


@router.get(
    "/api/v1/tickets/{id}/messages",
    Permission.TICKETS_READ,
    query=MessageListQuery,
    response=MessagePage,
    summary="List a ticket's messages",
)
async def list_ticket_messages(call: Call[NoBody, MessageListQuery]) -> MessagePage:
    """The ticket's messages, oldest first, `limit` at a time after `after_id`."""
    ticket_id = call.id()
    async with call.tx() as conn:
        await visible_ticket(call, conn, ticket_id)
        return await list_messages(
            conn, call.tenant_id, ticket_id, limit=call.query.limit, after_id=call.query.after_id
        )


@router.post(
    "/api/v1/tickets/{id}/messages",
    Permission.MESSAGES_SEND,
    body=TicketMessageIn,
    response=MessageView,
    status=202,
    summary="Send or schedule a message on a ticket",
)
async def send_ticket_message(call: Call[TicketMessageIn, NoQuery]) -> MessageView:
    """Record the message `pending` and answer 202; a worker sends it.

    Its status then moves to sent, delivered, read or failed (with the provider's code), over
    the WebSocket and in the message list. With `send_at` the message is scheduled instead:
    it waits, editable and cancellable, with `scheduled_at` set, until the scheduler sends it.
    """
    ticket_id = call.id()
    send = call.body
    async with call.tx() as conn:
        ticket = await visible_ticket(call, conn, ticket_id)
        refusal = None if send.template is None else template_refusal(ticket.channel.type)
        if refusal is not None:
            raise invalid_field("template", refusal)
        try:
            recorded: RecordedSend = await conn.run_sync(
                lambda sync: record_send(
                    sync,
                    tenant_id=call.tenant_id,
                    ticket_id=ticket_id,
                    request=send,
                    user_id=call.principal.user_id,
                    send_type="chat" if send.send_at is None else "schedule",
                    scheduled_at=send.send_at,
                )
            )
        except NotFoundError:
            raise not_found("Ticket") from None
        message = await get_message(conn, call.tenant_id, recorded.message_id)
    sends = () if send.send_at is not None else (recorded.message_id,)
    await after_commit(sends=sends, outbox_ids=recorded.outbox_ids)
    assert message is not None
    return message


async def _change(
    call: Call[Any, Any], change: Callable[[Connection], MessageChange]
) -> MessageView:
    """Apply `change` to a message of a ticket the caller can see; the message afterwards."""
    message_id = call.id()
    async with call.tx() as conn:
        ticket_id = await get_message_ticket_id(conn, call.tenant_id, message_id)
        if ticket_id is None:
            raise not_found("Message")
        await visible_ticket(call, conn, ticket_id, subject="Message")
        try:
            changed = await conn.run_sync(change)
        except MessageStateError as exc:
            raise conflict(str(exc)) from None
        except NotFoundError:
            raise not_found("Message") from None
        message = await get_message(conn, call.tenant_id, message_id)
    await after_commit(outbox_ids=changed.outbox_ids)
    assert message is not None
    return message


@router.delete(
    "/api/v1/messages/{id}",
    Permission.MESSAGES_SEND,
    response=MessageView,
    summary="Cancel a message not yet sent, or delete a sent one",
)
async def cancel_message(call: Call[NoBody, NoQuery]) -> MessageView:
    """Cancel a scheduled or pending message, or delete a sent one at the provider.

    A message no worker has picked up yet stays in the ticket as `failed` with error_code
    `cancelled`. A sent message is deleted at the provider where the channel allows it
    (Telegram, within its 48-hour limit): the answer shows `last_change` pending, and
    `deleted_at` is set once the provider agrees (a `message.updated` event follows either
    way). 409 while a worker is sending it, for a received message, or on a channel whose
    provider cannot delete. 403 for another person's message unless the caller may moderate
    messages (supervisors and admins).
    """
    if await _pending_if_changeable(call):
        return await _change(
            call,
            lambda conn: mark_message_cancelled(
                conn,
                tenant_id=call.tenant_id,
                message_id=call.id(),
                user_id=call.principal.user_id,
            ),
        )
    return await _provider_change(call, "delete", None)


@router.patch(
    "/api/v1/messages/{id}",
    Permission.MESSAGES_SEND,
    body=MessageEditIn,
    response=MessageView,
    summary="Edit a scheduled or sent message",
)
async def edit_message(call: Call[MessageEditIn, NoQuery]) -> MessageView:
    """Replace the body (the caption, for media) of a message.

    A scheduled message not yet sent changes at once. A sent message is edited at the
    provider where the channel allows it (Telegram): the answer shows `last_change` pending,
    and the body and `edited_at` change once the provider agrees (a `message.updated` event
    follows either way; a refusal leaves the body as it was, with the provider's reason in
    `last_change`). 409 for other messages. 403 for another person's message unless the
    caller may moderate messages (supervisors and admins).
    """
    body = call.body.body
    if await _pending_if_changeable(call):
        return await _change(
            call,
            lambda conn: mark_scheduled_body(
                conn,
                tenant_id=call.tenant_id,
                message_id=call.id(),
                user_id=call.principal.user_id,
                body=body,
            ),
        )
    return await _provider_change(call, "edit", body)


async def _pending_if_changeable(call: Call[Any, Any]) -> bool:
    """Whether the message has not gone out yet: 404 when the caller cannot see it, 403 when
    someone else sent it and the caller may not moderate messages."""
    async with call.tx() as conn:
        message = await _visible_message(call, conn)
    principal = call.principal
    # An API client acts for the tenant's systems with what it was granted, as before; a
    # person may change their own messages, and others' only as a moderator.
    own = principal.is_client or message.user_id == principal.user_id
    moderates = may(principal, Permission.MESSAGES_MODERATE)
    if message.direction == "out" and not own and not moderates:
        raise ApiError(403, "forbidden", "Only a supervisor may change another person's message.")
    return message.status == "pending"


async def _visible_message(call: Call[Any, Any], conn: AsyncConnection) -> MessageView:
    message_id = call.id()
    ticket_id = await get_message_ticket_id(conn, call.tenant_id, message_id)
    if ticket_id is None:
        raise not_found("Message")
    await visible_ticket(call, conn, ticket_id, subject="Message")
    message = await get_message(conn, call.tenant_id, message_id)
    if message is None:
        raise not_found("Message")
    return message


async def _provider_change(call: Call[Any, Any], kind: ChangeKind, body: str | None) -> MessageView:
    """Record an edit or deletion for a worker to carry out at the provider."""
    async with call.tx() as conn:
        await _visible_message(call, conn)
        try:
            requested = await conn.run_sync(
                lambda sync: request_change(
                    sync,
                    tenant_id=call.tenant_id,
                    message_id=call.id(),
                    user_id=call.principal.user_id,
                    kind=kind,
                    body=body,
                    supports=lambda channel_type, _kind: can_change_sent(channel_type),
                )
            )
        except MessageStateError as exc:
            raise conflict(str(exc)) from None
        except NotFoundError:
            raise not_found("Message") from None
        message = await get_message(conn, call.tenant_id, requested.message_id)
    await asyncio.to_thread(change_message.send, call.tenant_id, requested.change_id)
    await after_commit(outbox_ids=requested.outbox_ids)
    assert message is not None
    return message
