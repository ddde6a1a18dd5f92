"""Helpers of the campaign tests: the app with the campaign routes, people, tags, campaigns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api import campaigns
from api.errors import ApiError, api_error_handler, validation_error_handler
from engine.db import async_system_tx
from engine.security import Role
from tests.api.helpers import SETTINGS
from tests.api.resources_helpers import Team

BASE = "/api/v1/campaigns"


def build_campaigns_app(db: AsyncEngine) -> Starlette:
    app = Starlette(
        routes=campaigns.router.routes(),
        exception_handlers={
            ApiError: api_error_handler,
            ValidationError: validation_error_handler,
        },
    )
    app.state.deps = SimpleNamespace(settings=SETTINGS, db=db)
    return app


@dataclass(frozen=True)
class Person:
    name: str | None
    phone: str | None = None
    identity: str | None = None  # a WhatsApp identity with this E.164 key
    opted_out: bool = False
    tags: tuple[int, ...] = ()


def _insert(conn: Connection, sql: str, **params: object) -> int:
    return int(conn.execute(text(sql + " RETURNING id"), params).scalar_one())


async def add_tag(db: AsyncEngine, team: Team, name: str) -> int:
    async with async_system_tx(db) as conn:
        return await conn.run_sync(
            lambda c: _insert(
                c, "INSERT INTO tags (tenant_id, name) VALUES (:t, :n)", t=team.tenant_id, n=name
            )
        )


async def add_people(db: AsyncEngine, team: Team, people: dict[str, Person]) -> dict[str, int]:
    def insert(c: Connection) -> dict[str, int]:
        ids: dict[str, int] = {}
        for key, p in people.items():
            cid = _insert(
                c,
                "INSERT INTO contacts (tenant_id, name, phone, opted_out) VALUES (:t, :n, :p, :o)",
                t=team.tenant_id,
                n=p.name,
                p=p.phone,
                o=p.opted_out,
            )
            ids[key] = cid
            if p.identity:
                c.execute(
                    text(
                        "INSERT INTO contact_identities (tenant_id, contact_id, channel_type,"
                        " identity_key, external_id) VALUES (:t, :c, 'whatsapp', :k, :e)"
                    ),
                    {"t": team.tenant_id, "c": cid, "k": p.identity, "e": p.identity.lstrip("+")},
                )
            for tag in p.tags:
                c.execute(
                    text(
                        "INSERT INTO contact_tags (tenant_id, contact_id, tag_id)"
                        " VALUES (:t, :c, :g)"
                    ),
                    {"t": team.tenant_id, "c": cid, "g": tag},
                )
        return ids

    async with async_system_tx(db) as conn:
        return await conn.run_sync(insert)


async def execute(db: AsyncEngine, sql: str, **params: object) -> None:
    async with async_system_tx(db) as conn:
        await conn.execute(text(sql), params)


async def rows(db: AsyncEngine, sql: str, **params: object) -> list[tuple[Any, ...]]:
    async with async_system_tx(db) as conn:
        return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]


def campaign_body(team: Team, **over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "May promo",
        "channel_id": team.channel_id,
        "variants": [{"body": "Hi {{first_name|there}}, 20% off this week!"}],
    }
    body.update(over)
    return body


async def default_audience(db: AsyncEngine, team: Team) -> dict[str, list[int]]:
    """One reachable contact of the team, as an audience."""
    ids = await add_people(db, team, {"someone": Person("Someone", None, identity=None)})
    return {"contact_ids": [ids["someone"]]}


async def create(
    api: httpx.AsyncClient,
    db: AsyncEngine,
    team: Team,
    *,
    role: Role = "supervisor",
    **over: object,
) -> dict[str, Any]:
    if "audience" not in over:
        over["audience"] = await default_audience(db, team)
    response = await api.post(BASE, json=campaign_body(team, **over), headers=team.as_(role))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def dumps(value: object) -> str:
    return json.dumps(value)
