"""API rate limits as a client meets them: 429 with Retry-After per IP and per tenant, never for
provider webhooks or health checks, and no outage when Redis is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api import ratelimit
from config import Settings
from engine.security import issue_access_token
from tests.api.auth_helpers import (
    WHOAMI,
    bearer,
    build_app,
    http_client,
    new_tenant,
    new_user,
    settings_for,
)

pytestmark = pytest.mark.anyio

# Mid-window, so no test straddles a minute boundary and sees its count reset.
FROZEN_NOW = 1_800_000_030.0


async def _ok(_: Request) -> Response:
    return PlainTextResponse("ok")


PROVIDER_ROUTES = [
    Route("/healthz", _ok, methods=["GET"]),
    Route("/webhooks/whatsapp/1", _ok, methods=["POST"]),
]


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(time=lambda: FROZEN_NOW, monotonic=time.monotonic)
    monkeypatch.setattr(ratelimit, "time", clock)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
def client_with(db: AsyncEngine, redis: aioredis.Redis, queue_prefix: str) -> Client:
    def make(per_ip: int = 100_000, per_tenant: int = 100_000, **deps: object) -> httpx.AsyncClient:
        settings = settings_for(
            queue_prefix,
            API_RATE_PER_IP_PER_MIN=str(per_ip),
            API_RATE_PER_TENANT_PER_MIN=str(per_tenant),
        )
        app = build_app(db, deps.get("redis", redis), settings, extra_routes=PROVIDER_ROUTES)
        return http_client(app)

    return make


def token_for(settings: Settings, tenant_id: int, user_id: int) -> dict[str, str]:
    return bearer(
        issue_access_token(
            user_id=user_id,
            tenant_id=tenant_id,
            role="agent",
            token_version=0,
            secret=settings.JWT_SECRET,
            ttl_s=600,
        )
    )


async def test_an_ip_over_its_limit_gets_429_with_retry_after(client_with: Client) -> None:
    async with client_with(per_ip=3) as http:
        statuses = [(await http.get(WHOAMI)).status_code for _ in range(3)]
        limited = await http.get(WHOAMI)

    assert statuses == [401, 401, 401]  # counted even when the token is missing
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert str(retry_after) in limited.json()["error"]["message"]


async def test_a_tenant_over_its_limit_is_limited_alone(
    client_with: Client, db: AsyncEngine
) -> None:
    busy, quiet = await new_tenant(db), await new_tenant(db)
    busy_user, quiet_user = await new_user(db, busy.id), await new_user(db, quiet.id)
    settings = settings_for("unused")
    async with client_with(per_tenant=2) as http:
        busy_auth = token_for(settings, busy.id, busy_user.id)
        first = [(await http.get(WHOAMI, headers=busy_auth)).status_code for _ in range(2)]
        third = await http.get(WHOAMI, headers=busy_auth)
        other = await http.get(WHOAMI, headers=token_for(settings, quiet.id, quiet_user.id))

    assert first == [200, 200]
    assert third.status_code == 429 and "retry-after" in third.headers
    assert other.status_code == 200


async def test_an_api_client_token_counts_on_its_own(client_with: Client) -> None:
    async with client_with(per_tenant=1) as http:
        one = bearer("fdk_" + "a" * 43)
        two = bearer("fdk_" + "b" * 43)
        first = await http.get(WHOAMI, headers=one)
        second = await http.get(WHOAMI, headers=one)
        other = await http.get(WHOAMI, headers=two)

    assert first.status_code == 401  # unknown token: refused, but its bucket counted it
    assert second.status_code == 429
    assert other.status_code == 401


async def test_webhooks_and_health_checks_are_never_limited(client_with: Client) -> None:
    async with client_with(per_ip=1) as http:
        for _ in range(5):
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.post("/webhooks/whatsapp/1", content=b"{}")).status_code == 200
        assert (await http.get(WHOAMI)).status_code == 401
        assert (await http.get(WHOAMI)).status_code == 429


async def test_requests_go_through_when_redis_is_down(client_with: Client) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    async with client_with(per_ip=1, redis=dead) as http:
        statuses = [(await http.get(WHOAMI)).status_code for _ in range(3)]
    await dead.aclose()

    assert statuses == [401, 401, 401]  # refused for the missing token, never 429 or 500


async def test_a_slow_redis_does_not_hold_requests(
    client_with: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "REDIS_BUDGET_S", 0.05)

    # A server that accepts the connection and never answers: the budget, not Redis, decides.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stalled = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        async with client_with(per_ip=1, redis=stalled) as http:
            started = time.monotonic()
            response = await http.get(WHOAMI)
            elapsed = time.monotonic() - started
    finally:
        await stalled.aclose()
        server.close()

    assert response.status_code == 401
    assert elapsed < 2
