"""Webhook endpoints for every channel: verify ▸ record durably ▸ 2xx. No pipeline logic here."""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adapters.base import InboundAdapter
from api.backlog import BacklogFullError
from api.bodies import read_capped
from api.deps import WebhookDeps
from api.errors import ApiError
from api.webhook_outcomes import counted_webhook
from engine.db import async_system_tx
from engine.errors import DatabaseUnavailableError, InvalidPayloadError, SignatureMismatchError
from engine.events import ChannelType, WebhookRequest
from engine.logs import current_correlation_id
from engine.store.channels import Channel, get_tenant_channels_by_address_async
from engine.store.inbox import InboxWrite

log = logging.getLogger(__name__)

# Meta's channels prove a webhook URL with a GET handshake before sending anything.
_HANDSHAKE_TYPES = {ChannelType.WHATSAPP, ChannelType.MESSENGER, ChannelType.INSTAGRAM}
# Twilio warns about any answer that is not TwiML; an empty <Response/> means "no reply".
_TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Seconds a provider is asked to wait when the inbox backlog is full; workers drain meanwhile.
BACKLOG_RETRY_AFTER_S = 30


def _deps(request: Request) -> WebhookDeps:
    deps: WebhookDeps = request.app.state.deps
    return deps


def _channel_type(request: Request) -> ChannelType:
    try:
        return ChannelType(request.path_params["channel_type"])
    except ValueError:
        raise ApiError(404, "unknown_channel_type", "no such channel type") from None


async def _channel(request: Request, expected: ChannelType) -> Channel:
    deps = _deps(request)
    channel = await deps.channels.get(request.path_params["channel_id"])
    if channel is None or channel.type != expected:
        await deps.counters.incr(f"{expected.value}:unknown_channel")
        raise ApiError(404, "unknown_channel", "no such channel")
    return channel


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, at most `limit` bytes (413), within `timeout_s` (408)."""
    too_large = ApiError(413, "body_too_large", f"body larger than {limit} bytes")
    return await read_capped(request, limit=limit, too_large=too_large, timeout_s=timeout_s)


def _public_url(request: Request, deps: WebhookDeps) -> str:
    """The URL the provider called, as configured publicly (Twilio signs this exact string)."""
    base = str(deps.settings.BACKEND_URL).rstrip("/")
    query = request.scope["query_string"].decode("latin-1")
    return f"{base}{request.scope['path']}" + (f"?{query}" if query else "")


def _accepted(stored: int, duplicates: int) -> Response:
    """The 2xx every provider gets for a stored (or already stored) event."""
    body = f'{{"status":"accepted","stored":{stored},"duplicates":{duplicates}}}'
    return Response(body, media_type="application/json")


async def meta_handshake(request: Request) -> Response:
    """GET verification: echo hub.challenge when hub.verify_token matches the channel's."""
    channel_type = _channel_type(request)
    if channel_type not in _HANDSHAKE_TYPES:
        raise ApiError(405, "method_not_allowed", "this channel type has no GET handshake")
    channel = await _channel(request, channel_type)
    params = request.query_params
    token = params.get("hub.verify_token", "")
    expected = channel.secrets.verify_token or ""
    if params.get("hub.mode") != "subscribe" or not expected:
        raise ApiError(400, "bad_handshake", "hub.mode must be 'subscribe'")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(403, "bad_verify_token", "hub.verify_token does not match")
    return PlainTextResponse(params.get("hub.challenge", ""))


@counted_webhook
async def receive_webhook(request: Request) -> Response:
    """POST: verify over the raw bytes first, then route to the tenant's channel, then commit."""
    deps = _deps(request)
    channel_type = _channel_type(request)
    adapter = deps.adapters.get(channel_type)
    if adapter is None:
        raise ApiError(404, "unsupported_channel_type", f"{channel_type} is not available")
    channel = await _channel(request, channel_type)
    webhook = WebhookRequest(
        body=await _read_body(
            request, deps.settings.INGEST_MAX_BODY_BYTES, deps.settings.WEBHOOK_BODY_TIMEOUT_S
        ),
        headers={k.lower(): v for k, v in request.headers.items()},
        url=_public_url(request, deps),
        content_type=request.headers.get("content-type", "application/json"),
    )
    try:
        adapter.verify(webhook, channel.secrets)
    except SignatureMismatchError as exc:
        await deps.counters.incr(f"{channel_type}:bad_signature")
        log.info("webhook signature rejected", extra={"channel_id": channel.id, "reason": str(exc)})
        raise ApiError(401, "bad_signature", "signature does not match the request") from None
    targets = await _targets(deps, adapter, channel, webhook)
    key = adapter.dedupe_key(webhook)
    writes = [
        InboxWrite(
            tenant_id=c.tenant_id,
            channel_id=c.id,
            dedupe_key=key,
            body=webhook.body,
            content_type=webhook.content_type[:200],
            correlation_id=current_correlation_id(),
        )
        for c in targets
    ]
    try:
        stored = await deps.ingest.submit(writes)
    except DatabaseUnavailableError:
        raise ApiError(
            503,
            "unavailable",
            "cannot store the event now; retry later",
            headers={"Retry-After": "5"},
        ) from None
    except BacklogFullError:
        await deps.counters.incr(f"{channel_type}:backlog_full")
        raise ApiError(
            503,
            "backlog_full",
            "too many events wait for processing; retry later",
            headers={"Retry-After": str(BACKLOG_RETRY_AFTER_S)},
        ) from None
    if channel_type is ChannelType.SMS:
        return Response(_TWIML_EMPTY, media_type="text/xml")
    return _accepted(len(stored), len(writes) - len(stored))


async def _targets(
    deps: WebhookDeps, adapter: InboundAdapter, channel: Channel, webhook: WebhookRequest
) -> list[Channel]:
    """Channels of the URL's tenant this request addresses (never another tenant's)."""
    try:
        addresses = adapter.address_ids(webhook)
    except InvalidPayloadError as exc:
        await deps.counters.incr(f"{channel.type}:bad_body")
        raise ApiError(400, "bad_body", str(exc)) from None
    # None: the URL's channel is the only possible one (Telegram). Empty: a valid envelope that
    # names no address (Meta's account-level changes): keep it against the URL's channel, so
    # the provider is answered 2xx instead of retrying a 404 for days; it is recorded ignored.
    if addresses is None or not addresses or addresses == {channel.external_id}:
        return [channel]
    async with async_system_tx(deps.db) as conn:
        targets = await get_tenant_channels_by_address_async(
            conn, tenant_id=channel.tenant_id, type=channel.type, external_ids=sorted(addresses)
        )
    for _ in addresses - {c.external_id for c in targets}:
        await deps.counters.incr(f"{channel.type}:unknown_address")
    if not targets:
        raise ApiError(404, "unknown_address", "no channel of this tenant for that address")
    return targets


# The POST first: the app lists these routes first too, so a webhook is matched at once.
routes = [
    Route("/webhooks/{channel_type}/{channel_id:int}", receive_webhook, methods=["POST"]),
    Route("/webhooks/{channel_type}/{channel_id:int}", meta_handshake, methods=["GET"]),
]
