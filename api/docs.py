"""The OpenAPI document and the interactive docs page (Swagger UI from its wheel: works offline)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from api.framework import ApiRouter
from api.openapi import build_openapi
from engine.events import ChannelType

TITLE = "FlowDesk API"

# Relative URLs, so the page works behind a reverse proxy that mounts the API under a prefix.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>FlowDesk API</title>
  <link rel="stylesheet" href="docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "v1/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: false
    });
  </script>
</body>
</html>
"""

_ERROR = {"description": "Error", "content": {"application/json": {"schema": {}}}}

PROVIDER_WEBHOOK_PATHS: dict[str, Any] = {
    "/webhooks/{channel_type}/{channel_id}": {
        "parameters": [
            {
                "name": "channel_type",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": [t.value for t in ChannelType]},
            },
            {
                "name": "channel_id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
        ],
        "get": {
            "operationId": "provider_webhook_handshake",
            "summary": "Meta's subscription handshake (hub.mode, hub.verify_token, hub.challenge)",
            "tags": ["provider webhooks"],
            "security": [],
            "responses": {"200": {"description": "The challenge, echoed."}, "4XX": _ERROR},
        },
        "post": {
            "operationId": "provider_webhook",
            "summary": "A provider's webhook: signature verified over the raw body, then stored",
            "description": "Answered 2xx only once the raw body is committed to the inbox.",
            "tags": ["provider webhooks"],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {}},
                    "application/x-www-form-urlencoded": {"schema": {}},
                    "multipart/form-data": {"schema": {}},
                },
            },
            "responses": {
                "200": {"description": "Stored (or a duplicate of a stored event)."},
                "4XX": _ERROR,
                "503": _ERROR,
            },
        },
    },
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness",
            "tags": ["operations"],
            "security": [],
            "responses": {"200": {"description": "The process is up."}},
        }
    },
    "/readyz": {
        "get": {
            "operationId": "readyz",
            "summary": "Readiness: database (schema current), Redis and broker reachable",
            "tags": ["operations"],
            "security": [],
            "responses": {
                "200": {"description": '`{"status": "ready", "checks": {...}}`'},
                "503": {
                    "description": "`not_ready`; each failed check carries its `reason`.",
                },
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus exposition of every engine process on this host",
            "tags": ["operations"],
            "security": [],
            "responses": {
                "200": {
                    "description": "Prometheus text format 0.0.4.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
}


def _version() -> str:
    try:
        return version("flowdesk")
    except PackageNotFoundError:
        return "0.0.0"


def openapi_document(
    routers: Sequence[ApiRouter], extra_paths: Mapping[str, Any]
) -> dict[str, Any]:
    """The whole document: every declared endpoint plus hand-written entries for the rest."""
    return build_openapi(
        routers,
        title=TITLE,
        version=_version(),
        extra_paths={**PROVIDER_WEBHOOK_PATHS, **extra_paths},
    )


def docs_routes(routers: Sequence[ApiRouter], extra_paths: Mapping[str, Any]) -> list[BaseRoute]:
    """GET /api/v1/openapi.json, GET /api/docs and the Swagger UI files under /api/docs/static.

    The document is built once, here, so a model that cannot be described fails at start-up.
    """
    body = json.dumps(openapi_document(routers, extra_paths)).encode()

    async def openapi_json(_: Request) -> Response:
        return Response(body, media_type="application/json")

    async def docs_page(_: Request) -> Response:
        return HTMLResponse(_PAGE)

    return [
        Route("/api/v1/openapi.json", openapi_json, methods=["GET"], name="openapi"),
        Route("/api/docs", docs_page, methods=["GET"], name="docs"),
        Mount("/api/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="docs_static"),
    ]
