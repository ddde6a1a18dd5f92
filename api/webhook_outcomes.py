"""Counts and logs every provider webhook once: its channel type and outcome (accepted, or
the rejection's error code), with the request's correlation id bound by the middleware."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError
from engine.events import ChannelType
from engine.metrics import WEBHOOKS_RECEIVED

log = logging.getLogger("api.webhooks")

Handler = Callable[[Request], Awaitable[Response]]
_CHANNEL_TYPES = {t.value for t in ChannelType}


def counted_webhook(handler: Handler) -> Handler:
    """Decorate a webhook endpoint: one counter increment and one log line per request."""

    @wraps(handler)
    async def counted(request: Request) -> Response:
        raw_type = str(request.path_params.get("channel_type", ""))
        channel = raw_type if raw_type in _CHANNEL_TYPES else "unknown"
        fields: dict[str, object] = {
            "channel": channel,
            "channel_id": request.path_params.get("channel_id"),
        }
        try:
            response = await handler(request)
        except ApiError as exc:
            WEBHOOKS_RECEIVED.labels(channel=channel, outcome=exc.code).inc()
            log.info(
                "webhook rejected", extra={**fields, "outcome": exc.code, "status": exc.status}
            )
            raise
        WEBHOOKS_RECEIVED.labels(channel=channel, outcome="accepted").inc()
        log.info(
            "webhook accepted",
            extra={**fields, "outcome": "accepted", "status": response.status_code},
        )
        return response

    return counted
