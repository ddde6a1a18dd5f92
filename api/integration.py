"""The integration send: a tenant's system messages a person, idempotently by its own key."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from actors.deliver import publish_outbox
from actors.outbound import send_message
from api.errors import ApiError, ErrorDetail, invalid_field
from api.framework import ApiRouter, Call, NoQuery, conflict
from api.rbac import Permission
from engine.errors import NotFoundError
from engine.events import template_refusal
from engine.queries.tickets import MessageView, get_message
from engine.store.campaigns import get_channel_state
from pipelines.outbound.api_send import (
    ApiSend,
    ApiSendRequest,
    ExternalKeyConflictError,
    RecipientError,
    record_api_send,
)

log = logging.getLogger(__name__)

router = ApiRouter("messages")

_KEY_INDEX = "messages_external_key"


class ApiSendOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    external_key: str
    contact_id: int
    replayed: bool  # true: this key was sent before; this is that message, not a new one
    message: MessageView


@router.post(
    "/api/v1/messages",
    Permission.MESSAGES_SEND,
    body=ApiSendRequest,
    response=ApiSendOut,
    status=202,
    summary="Send a message to a person on a channel (idempotent by external_key)",
)
async def send_api_message(call: Call[ApiSendRequest, NoQuery]) -> Response:
    """Finds or creates the contact (`to`) and its open ticket on the channel, records the message
    `pending` and queues it: 202. Retrying with the same `external_key` answers 200 with the
    same message and sends nothing; the same key with a different payload is 409. Delivery
    status then moves as the provider reports (GET /api/v1/tickets/{id}/messages, WebSocket).
    """
    try:
        sent = await _record(call)
    except IntegrityError as exc:
        if _KEY_INDEX not in str(exc.orig):
            raise
        sent = await _record(call)  # a concurrent request with this key won: answer its message
    if not sent.replayed:
        # After commit: a lost enqueue leaves the message pending for the sweeper, never lost.
        await asyncio.to_thread(send_message.send, sent.message_id)
        if sent.outbox_ids:
            await asyncio.to_thread(publish_outbox.send, sent.outbox_ids)
    async with call.tx() as conn:
        message = await get_message(conn, call.tenant_id, sent.message_id)
    assert message is not None
    log.info(
        "api send recorded",
        extra={
            "tenant_id": call.tenant_id,
            "client_id": call.principal.client_id,
            "message_id": sent.message_id,
            "replayed": sent.replayed,
        },
    )
    out = ApiSendOut(
        external_key=call.body.external_key,
        contact_id=sent.contact_id,
        replayed=sent.replayed,
        message=message,
    )
    headers = {"Idempotent-Replayed": "true"} if sent.replayed else {}
    return Response(
        out.model_dump_json(),
        status_code=200 if sent.replayed else 202,
        media_type="application/json",
        headers=headers,
    )


async def _record(call: Call[ApiSendRequest, NoQuery]) -> ApiSend:
    principal = call.principal
    try:
        async with call.tx() as conn:
            if call.body.template is not None:
                await conn.run_sync(lambda c: _check_template_channel(c, call))
            sent: ApiSend = await conn.run_sync(
                lambda c: record_api_send(
                    c,
                    tenant_id=call.tenant_id,
                    api_client_id=principal.client_id,
                    user_id=None if principal.is_client else principal.user_id,
                    request=call.body,
                )
            )
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except RecipientError as exc:
        raise invalid_field(exc.field, str(exc)) from None
    except ExternalKeyConflictError as exc:
        error = conflict("external_key was already used for a different message.")
        error.details = (
            ErrorDetail(field="external_key", message=f"used by message {exc.message_id}"),
        )
        raise error from None
    return sent


def _check_template_channel(conn: Connection, call: Call[ApiSendRequest, NoQuery]) -> None:
    """422 for a template on a channel that cannot send one."""
    state = get_channel_state(conn, tenant_id=call.tenant_id, channel_id=call.body.channel_id)
    refusal = None if state is None else template_refusal(state[0])
    if refusal is not None:
        raise invalid_field("template", refusal)
