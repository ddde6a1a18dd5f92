"""Webhook subscriptions and their delivery log, as a tenant admin wiring up a CRM sees them."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api import auth, webhook_subscriptions
from api.errors import ApiError, api_error_handler, validation_error_handler
from engine.db import async_system_tx
from tests.api.helpers import SETTINGS, Seed, TenantSeed

pytestmark = pytest.mark.anyio

BASE = "/api/v1/webhook-subscriptions"


@pytest.fixture
async def client(db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(
        routes=[*auth.routes, *webhook_subscriptions.router.routes()],
        exception_handlers={ApiError: api_error_handler, ValidationError: validation_error_handler},
    )
    app.state.deps = SimpleNamespace(settings=SETTINGS, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as http:
        yield http


async def _login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def admin_a(client: httpx.AsyncClient, seed: Seed) -> dict[str, str]:
    return await _login(client, seed.a.admin_email, seed.a.password)


@pytest.fixture
async def admin_b(client: httpx.AsyncClient, seed: Seed) -> dict[str, str]:
    return await _login(client, seed.b.admin_email, seed.b.password)


def _url(tag: str, path: str = "hook") -> str:
    return f"https://crm.example.com/{tag}/{path}"


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    body.setdefault("url", _url(uuid.uuid4().hex))
    body.setdefault("events", ["message.created"])
    response = await client.post(BASE, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _fields(response: httpx.Response) -> set[str]:
    return {d["field"] for d in response.json()["error"]["details"]}


async def test_created_subscription_shows_its_secret_once(
    client: httpx.AsyncClient, admin_a: dict[str, str]
) -> None:
    tag = uuid.uuid4().hex
    created = await _create(
        client, admin_a, url=_url(tag), events=["ticket.created", "message.created"]
    )

    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["message.created", "ticket.created"]
    assert created["enabled"] is True
    shown = await client.get(f"{BASE}/{created['id']}", headers=admin_a)
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert shown.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = await client.get(BASE, params={"q": tag}, headers=admin_a)
    assert [s["id"] for s in listed.json()["items"]] == [created["id"]]
    assert "secret" not in listed.json()["items"][0]


async def test_a_secret_of_the_tenant_s_choosing_is_kept(
    client: httpx.AsyncClient, admin_a: dict[str, str], db: AsyncEngine
) -> None:
    created = await _create(client, admin_a, secret="my-own-secret-0123456789")
    assert created["secret"] == "my-own-secret-0123456789"
    async with async_system_tx(db) as conn:
        stored = await conn.scalar(
            text("SELECT secret FROM webhook_subscriptions WHERE id = :id"), {"id": created["id"]}
        )
    assert stored == "my-own-secret-0123456789"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://crm.example.com/x", "events": ["message.created"]}, "url"),
        ({"url": "javascript:alert(1)", "events": ["message.created"]}, "url"),
        ({"url": "https://user:pw@crm.example.com/x", "events": ["message.created"]}, "url"),
        ({"url": "https:///no-host-here", "events": ["message.created"]}, "url"),
        ({"url": "https://crm.example.com:99999/x", "events": ["message.created"]}, "url"),
        ({"url": "https://crm.example.com/" + "x" * 2000, "events": ["ticket.created"]}, "url"),
        ({"url": "https://crm.example.com/x", "events": []}, "events"),
        ({"url": "https://crm.example.com/x", "events": ["ticket.deleted"]}, "events.0"),
        ({"url": "https://crm.example.com/x", "events": "message.created"}, "events"),
        (
            {"url": "https://crm.example.com/x", "events": ["ticket.created"], "secret": "short"},
            "secret",
        ),
        (
            {"url": "https://crm.example.com/x", "events": ["ticket.created"], "tenant_id": 2},
            "tenant_id",
        ),
        ({"events": ["ticket.created"]}, "url"),
    ],
)
async def test_invalid_subscriptions_are_refused_naming_the_field(
    client: httpx.AsyncClient, admin_a: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post(BASE, json=body, headers=admin_a)
    assert response.status_code == 422, response.text
    assert field in _fields(response)
    assert "short" not in response.text and "pw@" not in response.text  # values never echoed


async def test_private_network_and_plain_http_targets_are_allowed(
    client: httpx.AsyncClient, admin_a: dict[str, str]
) -> None:
    created = await _create(client, admin_a, url="http://10.0.0.7:8080/flowdesk")
    assert created["url"] == "http://10.0.0.7:8080/flowdesk"


async def test_changing_a_subscription(client: httpx.AsyncClient, admin_a: dict[str, str]) -> None:
    created = await _create(client, admin_a)
    path = f"{BASE}/{created['id']}"

    response = await client.patch(
        path, json={"events": ["contact.updated"], "enabled": False}, headers=admin_a
    )
    assert response.status_code == 200, response.text
    assert response.json()["events"] == ["contact.updated"]
    assert response.json()["enabled"] is False
    assert response.json()["url"] == created["url"]

    empty = await client.patch(path, json={}, headers=admin_a)
    assert empty.status_code == 422
    nulled = await client.patch(path, json={"url": "gopher://x.example/"}, headers=admin_a)
    assert nulled.status_code == 422 and "url" in _fields(nulled)


async def test_rotating_the_secret_shows_the_new_one_once(
    client: httpx.AsyncClient, admin_a: dict[str, str]
) -> None:
    created = await _create(client, admin_a)
    rotated = await client.post(f"{BASE}/{created['id']}/rotate-secret", json={}, headers=admin_a)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != created["secret"]
    chosen = await client.post(
        f"{BASE}/{created['id']}/rotate-secret",
        json={"secret": "a-brand-new-secret-value"},
        headers=admin_a,
    )
    assert chosen.json()["secret"] == "a-brand-new-secret-value"


async def test_deleting_a_subscription(client: httpx.AsyncClient, admin_a: dict[str, str]) -> None:
    created = await _create(client, admin_a)
    path = f"{BASE}/{created['id']}"
    deleted = await client.delete(path, headers=admin_a)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(path, headers=admin_a)).status_code == 404
    assert (await client.delete(path, headers=admin_a)).status_code == 404


async def test_another_tenant_s_subscription_does_not_exist_for_you(
    client: httpx.AsyncClient, admin_a: dict[str, str], admin_b: dict[str, str]
) -> None:
    tag = uuid.uuid4().hex
    created = await _create(client, admin_a, url=_url(tag))
    path = f"{BASE}/{created['id']}"

    assert (await client.get(path, headers=admin_b)).status_code == 404
    assert (await client.get(f"{path}/deliveries", headers=admin_b)).status_code == 404
    patched = await client.patch(path, json={"enabled": False}, headers=admin_b)
    assert patched.status_code == 404
    rotated = await client.post(f"{path}/rotate-secret", json={}, headers=admin_b)
    assert rotated.status_code == 404
    assert (await client.delete(path, headers=admin_b)).status_code == 404
    listed = await client.get(BASE, params={"q": tag}, headers=admin_b)
    assert listed.json()["items"] == []
    still = await client.get(path, headers=admin_a)
    assert still.json()["enabled"] is True


async def test_agents_may_not_manage_webhooks(
    client: httpx.AsyncClient, admin_a: dict[str, str], seed: Seed
) -> None:
    created = await _create(client, admin_a)
    agent = await _login(client, seed.agent_email, seed.agent_password)
    path = f"{BASE}/{created['id']}"
    for response in (
        await client.get(BASE, headers=agent),
        await client.post(
            BASE, json={"url": _url("x"), "events": ["ticket.created"]}, headers=agent
        ),
        await client.get(path, headers=agent),
        await client.get(f"{path}/deliveries", headers=agent),
        await client.delete(path, headers=agent),
    ):
        assert response.status_code == 403
    assert (await client.get(BASE)).status_code == 401


async def test_listing_pages_and_filters(
    client: httpx.AsyncClient, admin_a: dict[str, str]
) -> None:
    tag = uuid.uuid4().hex
    ids = [
        (await _create(client, admin_a, url=_url(tag, str(i)), events=[event], enabled=i != 2))[
            "id"
        ]
        for i, event in enumerate(["ticket.created", "message.status"] * 3)
    ]
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"q": tag.upper(), "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(BASE, params=params, headers=admin_a)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)

    by_event = await client.get(BASE, params={"q": tag, "event": "message.status"}, headers=admin_a)
    assert [s["id"] for s in by_event.json()["items"]] == [ids[5], ids[3], ids[1]]
    disabled = await client.get(BASE, params={"q": tag, "enabled": "false"}, headers=admin_a)
    assert [s["id"] for s in disabled.json()["items"]] == [ids[2]]
    bad = ({"cursor": "not-a-cursor"}, {"limit": "0"}, {"limit": "101"}, {"nope": "1"})
    for params in (*bad, {"q": "hooks\x00"}):
        response = await client.get(BASE, params=params, headers=admin_a)
        assert response.status_code == 422, params


async def _delivery(conn: Any, tenant: TenantSeed, sub_id: int, **cols: Any) -> int:
    values = {"event": "message.created", "attempts": 0, **cols}
    names = ", ".join(values)
    binds = ", ".join(f":{n}" for n in values)
    return int(
        await conn.scalar(
            text(
                f"INSERT INTO webhook_deliveries (tenant_id, subscription_id, payload, {names})"
                f" VALUES (:t, :s, '{{}}'::jsonb, {binds}) RETURNING id"
            ),
            {"t": tenant.tenant_id, "s": sub_id, **values},
        )
    )


async def test_the_delivery_log_tells_what_became_of_each_event(
    client: httpx.AsyncClient, admin_a: dict[str, str], db: AsyncEngine, seed: Seed
) -> None:
    sub = await _create(client, admin_a)
    async with async_system_tx(db) as conn:
        pending = await _delivery(conn, seed.a, sub["id"])
        retrying = await _delivery(
            conn, seed.a, sub["id"], attempts=2, status_code=503, latency_ms=40, error="HTTP 503"
        )
        delivered = await _delivery(
            conn,
            seed.a,
            sub["id"],
            event="ticket.created",
            attempts=3,
            status_code=200,
            latency_ms=12,
        )
        await conn.execute(
            text("UPDATE webhook_deliveries SET delivered_at = now() WHERE id = :id"),
            {"id": delivered},
        )
        dead = await _delivery(
            conn, seed.a, sub["id"], attempts=1, status_code=410, error="HTTP 410"
        )
        await conn.execute(
            text(
                "INSERT INTO dead_letters (tenant_id, actor, queue, payload, error_class,"
                " error_message, attempts) VALUES (:t, 'deliver_webhook', 'webhooks',"
                " CAST(:p AS jsonb), 'WebhookRejectedError', 'HTTP 410', 1)"
            ),
            {"t": seed.a.tenant_id, "p": json.dumps({"args": [dead], "kwargs": {}})},
        )

    response = await client.get(f"{BASE}/{sub['id']}/deliveries", headers=admin_a)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(d["id"], d["status"]) for d in items] == [
        (dead, "dead"),
        (delivered, "delivered"),
        (retrying, "retrying"),
        (pending, "pending"),
    ]
    assert items[1]["delivered_at"] is not None
    assert (items[1]["status_code"], items[1]["latency_ms"], items[1]["attempts"]) == (200, 12, 3)
    assert (items[2]["status_code"], items[2]["error"]) == (503, "HTTP 503")

    dead_only = await client.get(
        f"{BASE}/{sub['id']}/deliveries", params={"status": "dead"}, headers=admin_a
    )
    assert [d["id"] for d in dead_only.json()["items"]] == [dead]
    first = await client.get(f"{BASE}/{sub['id']}/deliveries", params={"limit": 3}, headers=admin_a)
    rest = await client.get(
        f"{BASE}/{sub['id']}/deliveries",
        params={"limit": 3, "cursor": first.json()["next_cursor"]},
        headers=admin_a,
    )
    assert [d["id"] for d in rest.json()["items"]] == [pending]
    assert rest.json()["next_cursor"] is None
    bad = await client.get(
        f"{BASE}/{sub['id']}/deliveries", params={"status": "lost"}, headers=admin_a
    )
    assert bad.status_code == 422 and "status" in _fields(bad)
