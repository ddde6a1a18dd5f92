"""uvicorn app factories for the ingest benchmark: FlowDesk as deployed, and a bare endpoint."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.app import app_from_env

WEBHOOK_PATH = "/webhooks/whatsapp/{channel_id:int}"


def flowdesk_app() -> Starlette:
    """The real web process, configured from the environment like `flowdesk serve`."""
    return app_from_env()


async def _healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _bare_webhook(request: Request) -> Response:
    """Read the body and answer like FlowDesk does, doing nothing else."""
    await request.body()
    return JSONResponse({"status": "accepted", "stored": 1, "duplicates": 0})


def bare_app() -> Starlette:
    """The floor: same framework, same server, same route, no work."""
    return Starlette(
        routes=[
            Route("/healthz", _healthz, methods=["GET"]),
            Route(WEBHOOK_PATH, _bare_webhook, methods=["POST"]),
        ]
    )
