"""The sandbox's ASGI app: every provider's API on one Starlette router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from adapters.sandbox.callbacks import CallbackDispatcher
from adapters.sandbox.control import control_routes
from adapters.sandbox.graph import graph_routes
from adapters.sandbox.state import SandboxState
from adapters.sandbox.telegram import telegram_routes
from adapters.sandbox.twilio import twilio_routes


def create_sandbox_app(state: SandboxState) -> Starlette:
    """A Starlette app speaking the Graph API, the Telegram Bot API and Twilio over `state`.

    Route order matters: fixed prefixes (/_sandbox, /media, /bot…, /2010-04-01) come before
    the Graph API's catch-all `/{version}/{id}` shapes.
    """
    dispatcher = CallbackDispatcher(state)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await dispatcher.aclose()

    routes = [
        *control_routes(state),
        *telegram_routes(state),
        *twilio_routes(state, dispatcher),
        *graph_routes(state, dispatcher),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
