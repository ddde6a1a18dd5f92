"""API clients as an admin and a tenant's system see them: tokens shown once, scoped grants,
revocation and last use."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from api.framework import ApiRouter, Call, NoBody, NoQuery
from api.rbac import Permission
from tests.api.auth_helpers import (
    WHOAMI,
    Tenant,
    bearer,
    build_app,
    create_client,
    http_client,
    new_tenant,
    new_user,
    scalar,
    session_of,
    settings_for,
)

pytestmark = pytest.mark.anyio

CLIENTS = "/api/v1/api-clients"
SEND = "/api/v1/messages"


class Ok(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool = True


# Endpoints demanding one permission each, to see exactly what a client's grants open.
grants = ApiRouter("test-grants")


@grants.get("/api/v1/test/contacts", Permission.CONTACTS_READ, response=Ok, summary="t")
async def needs_contacts_read(call: Call[NoBody, NoQuery]) -> Ok:
    return Ok()


@grants.post("/api/v1/test/act", Permission.TICKETS_ACT, response=Ok, summary="t")
async def needs_tickets_act(call: Call[NoBody, NoQuery]) -> Ok:
    return Ok()


@grants.get("/api/v1/test/public", None, response=Ok, summary="t")
async def needs_sign_in(call: Call[NoBody, NoQuery]) -> Ok:
    return Ok()


@pytest.fixture
async def http(
    db: AsyncEngine, redis_url: str, queue_prefix: str
) -> AsyncIterator[httpx.AsyncClient]:
    redis = aioredis.from_url(redis_url)
    app = build_app(db, redis, settings_for(queue_prefix), routers=[grants])
    async with http_client(app) as client:
        yield client
    await redis.aclose()


@pytest.fixture
async def tenant(db: AsyncEngine) -> Tenant:
    return await new_tenant(db)


@pytest.fixture
async def admin(http: httpx.AsyncClient, db: AsyncEngine, tenant: Tenant) -> dict[str, str]:
    user = await new_user(db, tenant.id, role="admin")
    return bearer((await session_of(http, user))["access"])


# Managing clients ----------------------------------------------------------------------


async def test_a_new_client_token_is_shown_once_and_never_again(
    http: httpx.AsyncClient, admin: dict[str, str], db: AsyncEngine
) -> None:
    created = await create_client(http, admin, "messages.send", "contacts.read", "messages.send")

    token = created["token"]
    client = created["client"]
    assert re.fullmatch(r"fdk_[A-Za-z0-9_-]{40,}", token)
    assert client["permissions"] == ["contacts.read", "messages.send"]
    assert client["status"] == "active"
    assert client["token_prefix"] == token[:12]
    listed = await http.get(CLIENTS, headers=admin)
    one = await http.get(f"{CLIENTS}/{client['id']}", headers=admin)
    assert listed.json()["items"] == [client]
    assert one.json() == client
    for response in (listed, one):
        assert token not in response.text and "token_hash" not in response.text
    stored = await scalar(db, "SELECT token_hash FROM api_clients WHERE id = :i", i=client["id"])
    assert stored != token and token not in str(stored)


async def test_only_admins_manage_clients(
    http: httpx.AsyncClient, admin: dict[str, str], db: AsyncEngine, tenant: Tenant
) -> None:
    created = await create_client(http, admin, "contacts.read")
    agent = await new_user(db, tenant.id, role="supervisor")
    as_agent = bearer((await session_of(http, agent))["access"])

    assert (await http.get(CLIENTS, headers=as_agent)).status_code == 403
    assert (await http.post(CLIENTS, json={}, headers=as_agent)).status_code == 403
    gone = await http.delete(f"{CLIENTS}/{created['client']['id']}", headers=as_agent)
    assert gone.status_code == 403
    # Neither can a client manage clients, whatever it was granted.
    as_client = bearer(created["token"])
    assert (await http.get(CLIENTS, headers=as_client)).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "permissions": ["users.manage"]}, "permissions.0"),
        ({"name": "x", "permissions": ["self"]}, "permissions.0"),
        ({"name": "x", "permissions": []}, "permissions"),
        ({"name": "  ", "permissions": ["contacts.read"]}, "name"),
        ({"name": "x" * 101, "permissions": ["contacts.read"]}, "name"),
        ({"name": "x", "permissions": ["contacts.read"], "token": "fdk_mine"}, "token"),
        ({"permissions": ["contacts.read"]}, "name"),
    ],
)
async def test_a_bad_client_is_refused_naming_the_field(
    http: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await http.post(CLIENTS, json=body, headers=admin)

    assert response.status_code == 422, response.text
    assert field in {d["field"] for d in response.json()["error"]["details"]}


async def test_another_tenants_client_is_not_found(
    http: httpx.AsyncClient, admin: dict[str, str], db: AsyncEngine
) -> None:
    created = await create_client(http, admin, "contacts.read")
    other = await new_user(db, (await new_tenant(db)).id, role="admin")
    as_other = bearer((await session_of(http, other))["access"])
    url = f"{CLIENTS}/{created['client']['id']}"

    assert (await http.get(url, headers=as_other)).status_code == 404
    assert (await http.delete(url, headers=as_other)).status_code == 404
    assert (await http.get(CLIENTS, headers=as_other)).json()["items"] == []
    assert (await http.get(url, headers=admin)).json()["status"] == "active"


async def test_client_list_pages_filters_and_searches(
    http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    ids = [
        (await create_client(http, admin, "contacts.read", name=f"Shop {i}"))["client"]["id"]
        for i in range(5)
    ]
    await http.delete(f"{CLIENTS}/{ids[1]}", headers=admin)

    seen: list[int] = []
    cursor = None
    while True:
        url = f"{CLIENTS}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await http.get(url, headers=admin)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    revoked = (await http.get(f"{CLIENTS}?status=revoked", headers=admin)).json()["items"]
    found = (await http.get(f"{CLIENTS}?q=shop 3", headers=admin)).json()["items"]

    assert seen == sorted(ids, reverse=True)
    assert [c["id"] for c in revoked] == [ids[1]]
    assert [c["name"] for c in found] == ["Shop 3"]
    for query in ("limit=0", "limit=101", "cursor=bm90LWEtY3Vyc29y", "status=gone", "x=1"):
        assert (await http.get(f"{CLIENTS}?{query}", headers=admin)).status_code == 422, query


# Authenticating as a client ------------------------------------------------------------


async def test_a_client_token_opens_exactly_what_was_granted(
    http: httpx.AsyncClient, admin: dict[str, str], db: AsyncEngine
) -> None:
    created = await create_client(http, admin, "contacts.read")
    as_client = bearer(created["token"])

    assert (await http.get("/api/v1/test/contacts", headers=as_client)).status_code == 200
    assert (await http.post("/api/v1/test/act", headers=as_client)).status_code == 403
    assert (await http.get("/api/v1/test/public", headers=as_client)).status_code == 403
    assert (await http.get(WHOAMI, headers=as_client)).status_code == 403  # not a person
    assert (await http.post("/api/v1/auth/logout", headers=as_client)).status_code == 403
    assert (await http.post(SEND, json={}, headers=as_client)).status_code == 403
    used = await scalar(
        db,
        "SELECT last_used_at IS NOT NULL FROM api_clients WHERE id = :i",
        i=created["client"]["id"],
    )
    assert used is True


async def test_a_revoked_or_unknown_client_token_gets_401(
    http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create_client(http, admin, "contacts.read")
    as_client = bearer(created["token"])
    assert (await http.get("/api/v1/test/contacts", headers=as_client)).status_code == 200

    revoke = await http.delete(f"{CLIENTS}/{created['client']['id']}", headers=admin)
    again = await http.delete(f"{CLIENTS}/{created['client']['id']}", headers=admin)

    assert revoke.status_code == again.status_code == 204
    refused = await http.get("/api/v1/test/contacts", headers=as_client)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"
    forged = bearer(created["token"][:-4] + "AAAA")
    assert (await http.get("/api/v1/test/contacts", headers=forged)).status_code == 401
    shown = await http.get(f"{CLIENTS}/{created['client']['id']}", headers=admin)
    assert shown.json()["status"] == "revoked" and shown.json()["revoked_at"] is not None
