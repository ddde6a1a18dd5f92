"""Helpers for the resource API tests: a fresh tenant with a user of each role, the app."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import httpx
from pydantic import ValidationError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api import auth
from api.errors import ApiError, api_error_handler, validation_error_handler
from api.resources import ROUTERS
from engine.db import async_system_tx
from engine.security import Role, issue_access_token
from tests.api.helpers import SETTINGS

ROLES: tuple[Role, ...] = ("super", "admin", "supervisor", "agent")


@dataclass(frozen=True)
class Team:
    """One tenant of its own: a user per role and a WhatsApp and a Telegram channel."""

    tenant_id: int
    user_ids: dict[Role, int]
    channel_id: int
    telegram_channel_id: int
    label: str

    def as_(self, role: Role) -> dict[str, str]:
        """Authorization headers of this tenant's user with `role`."""
        token = issue_access_token(
            user_id=self.user_ids[role],
            tenant_id=self.tenant_id,
            role=role,
            token_version=0,
            secret=SETTINGS.JWT_SECRET,
            ttl_s=600,
        )
        return {"Authorization": f"Bearer {token}"}


def _insert(conn: Connection, sql: str, **params: object) -> int:
    return int(conn.execute(text(sql + " RETURNING id"), params).scalar_one())


def _create_team(conn: Connection) -> Team:
    label = uuid.uuid4().hex[:10]
    tenant_id = _insert(conn, "INSERT INTO tenants (name) VALUES (:n)", n=f"Team {label}")
    users: dict[Role, int] = {}
    for role in ROLES:
        users[role] = _insert(
            conn,
            "INSERT INTO users (tenant_id, name, email, password_hash, role)"
            " VALUES (:t, :n, :e, 'not-a-hash', :r)",
            t=tenant_id,
            n=f"{role.title()} {label}",
            e=f"{role}-{label}@team.test",
            r=role,
        )
    channels = [
        _insert(
            conn,
            "INSERT INTO channels (tenant_id, type, name, external_id, secrets, config)"
            " VALUES (:t, :type, :n, :x, CAST(:s AS jsonb), '{}')",
            t=tenant_id,
            type=kind,
            n=f"{kind} {label}",
            x=f"{label}-{kind}",
            s=json.dumps(secrets),
        )
        for kind, secrets in (
            ("whatsapp", {"access_token": f"wa-token-{label}", "app_secret": f"wa-app-{label}"}),
            ("telegram", {"bot_token": f"tg-token-{label}"}),
        )
    ]
    return Team(tenant_id, users, channels[0], channels[1], label)


async def make_team(db: AsyncEngine) -> Team:
    async with async_system_tx(db) as conn:
        return await conn.run_sync(_create_team)


def build_resources_app(db: AsyncEngine) -> Starlette:
    app = Starlette(
        routes=[*auth.routes, *(route for router in ROUTERS for route in router.routes())],
        exception_handlers={
            ApiError: api_error_handler,
            ValidationError: validation_error_handler,
        },
    )
    app.state.deps = SimpleNamespace(settings=SETTINGS, db=db)
    return app


def error_fields(response: httpx.Response) -> list[str]:
    """The field names a 4xx error's details name."""
    return [d["field"] for d in response.json()["error"]["details"]]


async def scalar(db: AsyncEngine, sql: str, **params: object) -> object:
    """One value, read in system scope (what the database really holds)."""
    async with async_system_tx(db) as conn:
        return (await conn.execute(text(sql), params)).scalar_one_or_none()
