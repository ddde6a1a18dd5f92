"""Send endpoint: an agent's reply is recorded `pending`, then a worker sends it."""

from __future__ import annotations

import asyncio
import json

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actors.deliver import publish_outbox
from actors.outbound import send_message
from api.auth import require_principal
from api.deps import get_deps
from api.errors import ApiError, invalid_request
from api.read import json_response, not_found, path_id
from engine.db import async_tenant_tx
from engine.errors import NotFoundError
from engine.queries.tickets import get_message
from pipelines.outbound import RecordedSend, SendRequest, record_send

MAX_SEND_BODY_BYTES = 64 * 1024


async def post_ticket_message(request: Request) -> Response:
    """POST /api/v1/tickets/{id}/messages — send text, media by URL, a template or a reply.

    Answers 202 with the message as stored (`pending`); its status moves to sent, delivered,
    read or failed (with the provider's code) as the provider reports, over the WebSocket and
    in GET /api/v1/tickets/{id}/messages.
    """
    principal = await require_principal(request)
    ticket_id = path_id(request, "Ticket")
    send = _parse(await _body(request))
    deps = get_deps(request)
    async with async_tenant_tx(deps.db, principal.tenant_id) as conn:
        try:
            recorded: RecordedSend = await conn.run_sync(
                lambda sync: record_send(
                    sync,
                    tenant_id=principal.tenant_id,
                    ticket_id=ticket_id,
                    request=send,
                    user_id=principal.user_id,
                )
            )
        except NotFoundError:
            raise not_found("Ticket") from None
    # After commit: a lost enqueue leaves the message pending for the sweeper, never lost.
    await asyncio.to_thread(send_message.send, recorded.message_id)
    await asyncio.to_thread(publish_outbox.send, recorded.outbox_ids)
    async with async_tenant_tx(deps.db, principal.tenant_id) as conn:
        message = await get_message(conn, principal.tenant_id, recorded.message_id)
    assert message is not None
    response = json_response(message)
    response.status_code = 202
    return response


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_SEND_BODY_BYTES:
        raise ApiError(
            413, "payload_too_large", f"Request body exceeds {MAX_SEND_BODY_BYTES} bytes."
        )
    body = await request.body()
    if len(body) > MAX_SEND_BODY_BYTES:
        raise ApiError(
            413, "payload_too_large", f"Request body exceeds {MAX_SEND_BODY_BYTES} bytes."
        )
    return body


def _parse(body: bytes) -> SendRequest:
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The request body is not JSON.") from None
    try:
        return SendRequest.model_validate(raw)
    except ValidationError as exc:
        raise invalid_request(exc, where="message") from None


routes = [
    Route(
        "/api/v1/tickets/{id:int}/messages",
        post_ticket_message,
        methods=["POST"],
        name="send_ticket_message",
    ),
]
