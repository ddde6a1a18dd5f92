"""An app with the auth, API client and integration endpoints on real Redis, and fresh users."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from api import account, auth, clients, integration
from api.errors import ApiError, api_error_handler, validation_error_handler
from api.framework import ApiRouter, Call, NoBody, NoQuery
from api.ratelimit import RateLimitMiddleware
from api.rbac import Permission
from config import Settings, load_settings
from engine.db import async_system_tx
from engine.security import hash_password
from tests.api.helpers import SETTINGS

WHOAMI = "/api/v1/test/whoami"


class WhoAmI(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    tenant_id: int
    client_id: int | None


probe = ApiRouter("test")


@probe.get(WHOAMI, Permission.SELF, response=WhoAmI, summary="Who the token belongs to")
async def whoami(call: Call[NoBody, NoQuery]) -> WhoAmI:
    """A signed-in user's own endpoint: tells whether a token still works."""
    p = call.principal
    return WhoAmI(user_id=p.user_id, tenant_id=p.tenant_id, client_id=p.client_id)


def settings_for(prefix: str, **overrides: str) -> Settings:
    """The API tests' settings with their own Redis key prefix and any overrides."""
    env = {
        "JWT_SECRET": SETTINGS.JWT_SECRET,
        "JWT_ACCESS_TTL_S": "600",
        "QUEUE_PREFIX": prefix,
        "API_RATE_PER_IP_PER_MIN": "100000",
        "API_RATE_PER_TENANT_PER_MIN": "100000",
    }
    env.update(overrides)
    return load_settings(env)


def build_app(
    db: AsyncEngine,
    redis: aioredis.Redis | None,
    settings: Settings,
    *,
    routers: Iterable[ApiRouter] = (),
    extra_routes: Iterable[BaseRoute] = (),
) -> Starlette:
    """The routes under test wired as api/app.py wires them, rate limiting included."""
    every = [account.router, clients.router, integration.router, probe, *routers]
    app = Starlette(
        routes=[
            *auth.routes,
            *[route for router in every for route in router.routes()],
            *extra_routes,
        ],
        middleware=[Middleware(RateLimitMiddleware)],
        exception_handlers={
            ApiError: api_error_handler,
            ValidationError: validation_error_handler,
        },
    )
    app.state.deps = SimpleNamespace(settings=settings, db=db, redis=redis)
    return app


def http_client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test")


@dataclass(frozen=True)
class User:
    id: int
    tenant_id: int
    email: str
    password: str


async def new_user(db: AsyncEngine, tenant_id: int, role: str = "agent") -> User:
    """A user no other test touches (the seeded ones are shared by the whole session)."""
    email = f"user-{uuid.uuid4().hex[:12]}@auth.test"
    password = f"pw-{uuid.uuid4().hex[:8]}-long enough"
    async with async_system_tx(db) as conn:
        user_id = (
            await conn.execute(
                text(
                    "INSERT INTO users (tenant_id, name, email, password_hash, role) "
                    "VALUES (:t, :n, :e, :h, :r) RETURNING id"
                ),
                {
                    "t": tenant_id,
                    "n": f"User {email[:10]}",
                    "e": email,
                    "h": hash_password(password),
                    "r": role,
                },
            )
        ).scalar_one()
    return User(id=int(user_id), tenant_id=tenant_id, email=email, password=password)


async def scalar(db: AsyncEngine, sql: str, **params: object) -> object:
    """One value from a system-scoped query (tests look across tenants on purpose)."""
    async with async_system_tx(db) as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def execute(db: AsyncEngine, sql: str, **params: object) -> None:
    async with async_system_tx(db) as conn:
        await conn.execute(text(sql), params)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(
    http: httpx.AsyncClient, user: User, *, totp_code: str | None = None
) -> httpx.Response:
    body: dict[str, str] = {"email": user.email, "password": user.password}
    if totp_code is not None:
        body["totp_code"] = totp_code
    return await http.post("/api/v1/auth/login", json=body)


async def session_of(http: httpx.AsyncClient, user: User) -> dict[str, str]:
    """access_token and refresh_token of a fresh sign-in."""
    response = await sign_in(http, user)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"access": body["access_token"], "refresh": body["refresh_token"]}


@dataclass(frozen=True)
class Tenant:
    id: int
    whatsapp_id: int
    telegram_id: int


async def new_tenant(db: AsyncEngine) -> Tenant:
    """A tenant of its own with a WhatsApp and a Telegram channel, so the seeded tenants'
    tickets, users and messages stay exactly as the read tests expect them."""
    tag = uuid.uuid4().hex[:12]
    async with async_system_tx(db) as conn:
        tenant_id = (
            await conn.execute(
                text("INSERT INTO tenants (name) VALUES (:n) RETURNING id"), {"n": f"Auth {tag}"}
            )
        ).scalar_one()
        ids = []
        for kind in ("whatsapp", "telegram"):
            ids.append(
                (
                    await conn.execute(
                        text(
                            "INSERT INTO channels (tenant_id, type, name, external_id) "
                            "VALUES (:t, :k, :n, :e) RETURNING id"
                        ),
                        {"t": tenant_id, "k": kind, "n": f"{kind} {tag}", "e": f"{kind}-{tag}"},
                    )
                ).scalar_one()
            )
    return Tenant(id=int(tenant_id), whatsapp_id=int(ids[0]), telegram_id=int(ids[1]))


class Spy:
    """Stands in for an actor: records what would have been enqueued."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def send(self, *args: Any) -> None:
        self.calls.append(args)


async def create_client(
    http: httpx.AsyncClient, admin: dict[str, str], *permissions: str, name: str = "ERP"
) -> dict[str, Any]:
    """POST /api/v1/api-clients as `admin`: the client and its one-time token."""
    response = await http.post(
        "/api/v1/api-clients", json={"name": name, "permissions": list(permissions)}, headers=admin
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def phone() -> str:
    """A Brazilian mobile number no other test uses."""
    return f"+55119{uuid.uuid4().int % 10**8:08d}"


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def works(http: httpx.AsyncClient, access: str) -> bool:
    status = (await http.get(WHOAMI, headers=bearer(access))).status_code
    assert status in (200, 401)
    return status == 200
