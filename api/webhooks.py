"""Webhook endpoints: verify ▸ record durably ▸ 2xx. No pipeline logic runs here."""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.base import ChannelAdapter
from api.deps import WebhookDeps
from api.errors import ApiError
from engine.db import async_system_tx
from engine.errors import DatabaseUnavailableError, InvalidPayloadError, SignatureMismatchError
from engine.events import ChannelType
from engine.store.channels import Channel, get_tenant_channels_by_address_async
from engine.store.inbox import InboxWrite

log = logging.getLogger(__name__)


def _deps(request: Request) -> WebhookDeps:
    deps: WebhookDeps = request.app.state.deps
    return deps


async def _channel(request: Request, expected: ChannelType) -> Channel:
    deps = _deps(request)
    channel = await deps.channels.get(request.path_params["channel_id"])
    if channel is None or channel.type != expected:
        await deps.counters.incr(f"{expected.value}:unknown_channel")
        raise ApiError(404, "unknown_channel", "no such channel")
    return channel


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, "body_too_large", f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def meta_handshake(request: Request) -> Response:
    """GET verification: echo hub.challenge when hub.verify_token matches the channel's."""
    channel = await _channel(request, ChannelType.WHATSAPP)
    params = request.query_params
    token = params.get("hub.verify_token", "")
    expected = channel.secrets.verify_token or ""
    if params.get("hub.mode") != "subscribe" or not expected:
        raise ApiError(400, "bad_handshake", "hub.mode must be 'subscribe'")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(403, "bad_verify_token", "hub.verify_token does not match")
    return PlainTextResponse(params.get("hub.challenge", ""))


async def whatsapp_webhook(request: Request) -> Response:
    """POST: signature over the raw bytes first, then route by phone_number_id, then commit."""
    deps = _deps(request)
    channel = await _channel(request, ChannelType.WHATSAPP)
    adapter: ChannelAdapter = deps.adapters[ChannelType.WHATSAPP]
    body = await _read_body(request, deps.settings.INGEST_MAX_BODY_BYTES)
    try:
        adapter.verify(body, request.headers, channel.secrets)
    except SignatureMismatchError as exc:
        await deps.counters.incr("whatsapp:bad_signature")
        log.info("webhook signature rejected", extra={"channel_id": channel.id, "reason": str(exc)})
        raise ApiError(401, "bad_signature", "signature does not match the body") from None
    try:
        addresses = adapter.address_ids(body)
    except InvalidPayloadError as exc:
        await deps.counters.incr("whatsapp:bad_body")
        raise ApiError(400, "bad_body", str(exc)) from None
    targets = await _targets(deps, channel, addresses)
    unknown = addresses - {c.external_id for c in targets}
    for _ in unknown:
        await deps.counters.incr("whatsapp:unknown_phone_number_id")
    if not targets:
        raise ApiError(404, "unknown_phone_number_id", "no channel for this phone_number_id")
    key = adapter.dedupe_key(body)
    writes = [
        InboxWrite(tenant_id=c.tenant_id, channel_id=c.id, dedupe_key=key, body=body)
        for c in targets
    ]
    try:
        stored = await deps.ingest.submit(writes)
    except DatabaseUnavailableError:
        raise ApiError(503, "unavailable", "cannot store the event now; retry later") from None
    return _accepted(stored, duplicates=len(writes) - len(stored))


async def _targets(deps: WebhookDeps, channel: Channel, addresses: set[str]) -> list[Channel]:
    """Channels of the same tenant this body addresses (never another tenant's)."""
    if addresses == {channel.external_id}:
        return [channel]
    async with async_system_tx(deps.db) as conn:
        return await get_tenant_channels_by_address_async(
            conn, tenant_id=channel.tenant_id, type=channel.type, external_ids=sorted(addresses)
        )


def _accepted(stored: list[int], *, duplicates: int) -> Response:
    return JSONResponse({"status": "accepted", "stored": len(stored), "duplicates": duplicates})


routes = [
    Route("/webhooks/whatsapp/{channel_id:int}", meta_handshake, methods=["GET"]),
    Route("/webhooks/whatsapp/{channel_id:int}", whatsapp_webhook, methods=["POST"]),
]
