"""Every request gets a correlation id (the caller's X-Request-ID when plausible), bound to
its log lines, copied onto the broker messages it sends, and echoed in the response."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bound_contextvars

from engine.logs import CORRELATION_KEY, new_correlation_id

HEADER = "x-request-id"


class CorrelationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == HEADER.encode()),
            None,
        )
        correlation_id = new_correlation_id(offered)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = correlation_id
            await send(message)

        with bound_contextvars(**{CORRELATION_KEY: correlation_id}):
            await self.app(scope, receive, send_with_id)
