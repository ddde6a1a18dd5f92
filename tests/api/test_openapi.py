"""The OpenAPI document and the docs page, as an integrator or a code generator sees them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from api import auth
from api.app import API_ROUTERS, create_app
from tests.api.helpers import SETTINGS

pytestmark = pytest.mark.anyio

# Routes written before api.framework; each drops out of this list once it is converted.
_LEGACY: list[BaseRoute] = []
if not getattr(auth, "AUTH_OPENAPI_PATHS", None):
    _LEGACY += auth.routes
_NOT_API = {"/api/v1/openapi.json", "/api/docs", "/api/docs/static"}


def _spec_path(path: str) -> str:
    """`/tickets/{id:int}` as Starlette has it → `/tickets/{id}` as OpenAPI has it."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _operations(routes: list[BaseRoute]) -> set[tuple[str, str]]:
    out = set()
    for route in routes:
        if isinstance(route, Route) and route.methods:
            out |= {(_spec_path(route.path), m.lower()) for m in route.methods if m != "HEAD"}
    return out


@pytest.fixture
def app() -> Starlette:
    return create_app(SETTINGS)  # routes only: nothing here needs the lifespan's connections


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as client:
        yield client


@pytest.fixture
async def document(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


async def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    errors = [e.message for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


async def test_every_declared_endpoint_is_documented_with_its_permission(
    document: dict[str, Any],
) -> None:
    specs = [spec for router in API_ROUTERS for spec, _ in router.specs]
    assert specs, "no router registered"
    for spec in specs:
        operation = document["paths"][_spec_path(spec.path)][spec.method.lower()]
        assert operation["operationId"] == spec.name
        if spec.permission is None:
            assert "x-permission" not in operation
        else:
            assert operation["x-permission"] == spec.permission.value, spec.path


async def test_every_api_route_the_app_serves_is_documented(
    app: Starlette, document: dict[str, Any]
) -> None:
    served = {op for op in _operations(app.routes) if op[0].startswith(("/api/", "/webhooks/"))}
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    missing = served - documented - _operations(_LEGACY) - {(p, "get") for p in _NOT_API}
    # A router added to the routes list directly instead of API_ROUTERS shows up here.
    assert missing == set()


async def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids))


async def test_webhook_subscription_endpoints_need_integrations_manage(
    document: dict[str, Any],
) -> None:
    paths = document["paths"]
    assert paths["/api/v1/webhook-subscriptions"]["post"]["x-permission"] == ("integrations.manage")
    assert paths["/api/v1/webhook-subscriptions/{id}/deliveries"]["get"]["x-permission"] == (
        "integrations.manage"
    )
    assert "/api/v1/ws" in paths
    assert "/webhooks/{channel_type}/{channel_id}" in paths


async def test_docs_page_loads_swagger_ui_from_this_server(http: httpx.AsyncClient) -> None:
    page = await http.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "docs/static/swagger-ui-bundle.js" in assets
    assert all(not a.startswith(("http:", "https:", "//")) for a in assets)  # works offline
    for asset in assets:
        response = await http.get(f"/api/{asset}")
        assert response.status_code == 200, asset
    script = await http.get("/api/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in script.text
    assert 'url: "v1/openapi.json"' in page.text


async def test_a_plain_get_of_the_websocket_url_says_upgrade(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/ws")
    assert response.status_code == 426
    assert response.json()["error"]["code"] == "upgrade_required"
