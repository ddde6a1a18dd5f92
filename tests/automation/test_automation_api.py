"""The admin API of automation: chat flows, channel attachment, auto-replies, auto-tag rules,
and the template check of fast replies and the out-of-hours message."""

from __future__ import annotations

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

from api import automation, resources
from api.errors import ApiError, api_error_handler, validation_error_handler
from engine.db import async_system_tx, create_async_db_engine
from tests.api.helpers import SETTINGS
from tests.api.resources_helpers import Team, error_fields, make_team
from tests.automation.flow_samples import menu_flow

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def adb(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_db_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(adb: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    routers = [*automation.ROUTERS, *resources.ROUTERS]
    app = Starlette(
        routes=[route for router in routers for route in router.routes()],
        exception_handlers={ApiError: api_error_handler, ValidationError: validation_error_handler},
    )
    app.state.deps = SimpleNamespace(settings=SETTINGS, db=adb)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as http:
        yield http


@pytest.fixture
async def team(adb: AsyncEngine) -> Team:
    return await make_team(adb)


async def make_queue(adb: AsyncEngine, team: Team, name: str) -> int:
    async with async_system_tx(adb) as conn:
        row = await conn.execute(
            text("INSERT INTO queues (tenant_id, name) VALUES (:t, :n) RETURNING id"),
            {"t": team.tenant_id, "n": f"{name} {uuid.uuid4().hex[:6]}"},
        )
        return int(row.scalar_one())


async def team_flow(adb: AsyncEngine, team: Team) -> dict[str, Any]:
    sales, support = await make_queue(adb, team, "Sales"), await make_queue(adb, team, "Support")
    return menu_flow(sales_queue=sales, support_queue=support)


# --- chat flows --------------------------------------------------------------------------


async def test_chat_flow_crud_default_and_channel(
    api: httpx.AsyncClient, adb: AsyncEngine, team: Team
) -> None:
    h = team.as_("admin")
    definition = await team_flow(adb, team)
    first = await api.post(
        "/api/v1/chat-flows",
        json={"name": "Menu", "definition": definition, "is_default": True},
        headers=h,
    )
    assert first.status_code == 201, first.text
    flow = first.json()
    assert (flow["is_default"], flow["definition"]["start"], flow["channel_ids"]) == (
        True,
        "menu",
        [],
    )
    second = await api.post(
        "/api/v1/chat-flows",
        json={"name": "Night", "definition": definition, "is_default": True},
        headers=h,
    )
    assert second.status_code == 201
    again = await api.get(f"/api/v1/chat-flows/{flow['id']}", headers=h)
    assert again.json()["is_default"] is False  # one default per tenant

    attached = await api.put(
        f"/api/v1/channels/{team.channel_id}/chat-flow",
        json={"chat_flow_id": flow["id"]},
        headers=h,
    )
    assert attached.json() == {"channel_id": team.channel_id, "chat_flow_id": flow["id"]}
    listed = await api.get("/api/v1/chat-flows", headers=h)
    shown = {f["name"]: f["channel_ids"] for f in listed.json()["items"]}
    assert shown == {"Menu": [team.channel_id], "Night": []}

    renamed = await api.patch(f"/api/v1/chat-flows/{flow['id']}", json={"name": "Day"}, headers=h)
    duplicate = await api.patch(
        f"/api/v1/chat-flows/{flow['id']}", json={"name": "Night"}, headers=h
    )
    deleted = await api.delete(f"/api/v1/chat-flows/{flow['id']}", headers=h)
    assert (renamed.json()["name"], duplicate.status_code, deleted.status_code) == ("Day", 409, 204)
    assert (await api.get(f"/api/v1/chat-flows/{flow['id']}", headers=h)).status_code == 404


async def test_invalid_flow_is_422_naming_node_and_field(
    api: httpx.AsyncClient, adb: AsyncEngine, team: Team
) -> None:
    definition = await team_flow(adb, team)
    definition["nodes"][0]["conditions"][2]["action"]["node"] = "nowhere"
    definition["nodes"].append({"id": "orphan"})
    dangling = await api.post(
        "/api/v1/chat-flows",
        json={"name": "Bad", "definition": definition},
        headers=team.as_("admin"),
    )
    assert dangling.status_code == 422
    assert error_fields(dangling) == ["definition.nodes[menu].conditions.2.action.node"]
    assert "nodes[menu]" in dangling.json()["error"]["message"]

    definition = await team_flow(adb, team)
    definition["nodes"].append({"id": "orphan"})
    definition["welcome"] = "Hi {{nickname}}"
    unknown_queue = menu_flow(sales_queue=987654)
    bodies = [
        (definition, ["definition.welcome"]),
        (
            unknown_queue,
            [
                "definition.nodes[menu].conditions.0.action.queue_id",
                "definition.nodes[menu].conditions.1.action.queue_id",
            ],
        ),
    ]
    for body, fields in bodies:
        response = await api.post(
            "/api/v1/chat-flows",
            json={"name": "Bad", "definition": body},
            headers=team.as_("admin"),
        )
        assert response.status_code == 422, response.text
        assert error_fields(response) == fields
    orphan_only = await team_flow(adb, team)
    orphan_only["nodes"].append({"id": "orphan"})
    response = await api.post(
        "/api/v1/chat-flows",
        json={"name": "Bad", "definition": orphan_only},
        headers=team.as_("admin"),
    )
    assert error_fields(response) == ["definition.nodes[orphan]"]


async def test_only_admins_and_only_their_tenant(
    api: httpx.AsyncClient, adb: AsyncEngine, team: Team
) -> None:
    other = await make_team(adb)
    theirs = await api.post(
        "/api/v1/chat-flows",
        json={"name": "Theirs", "definition": await team_flow(adb, other)},
        headers=other.as_("admin"),
    )
    flow_id = theirs.json()["id"]
    h = team.as_("admin")
    assert (await api.get("/api/v1/chat-flows", headers=team.as_("supervisor"))).status_code == 403
    assert (await api.get(f"/api/v1/chat-flows/{flow_id}", headers=h)).status_code == 404
    assert (await api.delete(f"/api/v1/chat-flows/{flow_id}", headers=h)).status_code == 404
    attach = await api.put(
        f"/api/v1/channels/{team.channel_id}/chat-flow", json={"chat_flow_id": flow_id}, headers=h
    )
    assert (attach.status_code, error_fields(attach)) == (422, ["chat_flow_id"])
    foreign_channel = await api.put(
        f"/api/v1/channels/{other.channel_id}/chat-flow", json={"chat_flow_id": None}, headers=h
    )
    assert foreign_channel.status_code == 404
    assert (await api.get("/api/v1/chat-flows", headers=h)).json()["items"] == []


# --- auto-replies and auto-tag rules -------------------------------------------------------


async def test_auto_replies_crud_and_validation(
    api: httpx.AsyncClient, adb: AsyncEngine, team: Team
) -> None:
    h = team.as_("admin")
    body = {
        "name": "Prices",
        "pattern": "price",
        "reply": "Hi {{first_name}}, see acme.test/prices",
        "priority": 5,
        "active_from": "08:00",
        "active_to": "20:00",
        "channel_id": team.channel_id,
    }
    created = await api.post("/api/v1/auto-replies", json=body, headers=h)
    assert created.status_code == 201, created.text
    reply = created.json()
    assert (reply["match_kind"], reply["active_from"], reply["enabled"]) == (
        "keyword",
        "08:00:00",
        True,
    )
    url = f"/api/v1/auto-replies/{reply['id']}"
    changed = await api.patch(url, json={"enabled": False, "priority": 1}, headers=h)
    assert (changed.json()["enabled"], changed.json()["priority"]) == (False, 1)
    assert (await api.post("/api/v1/auto-replies", json=body, headers=h)).status_code == 409

    other = await make_team(adb)
    bad = [
        ({**body, "name": "a", "match_kind": "regex", "pattern": "(open"}, ["body"]),
        ({**body, "name": "b", "reply": "{{coupon}}"}, ["reply"]),
        ({**body, "name": "c", "active_to": None}, ["body"]),
        ({**body, "name": "d", "channel_id": other.channel_id}, ["channel_id"]),
    ]
    for sent, fields in bad:
        response = await api.post("/api/v1/auto-replies", json=sent, headers=h)
        assert response.status_code == 422, sent
        assert [f.split(".")[0] for f in error_fields(response)] == fields
    assert (await api.delete(url, headers=h)).status_code == 204
    assert (await api.get(url, headers=h)).status_code == 404


async def test_auto_tag_rules_crud_and_tenant_checks(
    api: httpx.AsyncClient, adb: AsyncEngine, team: Team
) -> None:
    h = team.as_("admin")
    tag = await api.post("/api/v1/tags", json={"name": "Refund"}, headers=team.as_("supervisor"))
    other = await make_team(adb)
    their_tag = await api.post("/api/v1/tags", json={"name": "X"}, headers=other.as_("supervisor"))
    rule = {"tag_id": tag.json()["id"], "match_kind": "regex", "pattern": "money\\s+back"}
    created = await api.post("/api/v1/auto-tag-rules", json=rule, headers=h)
    assert created.status_code == 201, created.text
    assert (await api.post("/api/v1/auto-tag-rules", json=rule, headers=h)).status_code == 409
    foreign = await api.post(
        "/api/v1/auto-tag-rules", json={**rule, "tag_id": their_tag.json()["id"]}, headers=h
    )
    assert (foreign.status_code, error_fields(foreign)) == (422, ["tag_id"])
    listed = await api.get("/api/v1/auto-tag-rules", headers=h)
    assert [r["pattern"] for r in listed.json()["items"]] == ["money\\s+back"]
    assert (await api.get("/api/v1/auto-tag-rules", headers=other.as_("admin"))).json()[
        "items"
    ] == []


# --- templates at save -----------------------------------------------------------------------


async def test_fast_replies_and_absence_message_refuse_unknown_variables(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.as_("admin")
    good = await api.post(
        "/api/v1/fast-replies",
        json={"shortcut": "hi", "body": "{{greeting}}, {{first_name}}! I'm {{agent}}."},
        headers=h,
    )
    bad = await api.post(
        "/api/v1/fast-replies", json={"shortcut": "bye", "body": "Bye {{nome}}"}, headers=h
    )
    assert good.status_code == 201
    assert (bad.status_code, error_fields(bad)) == (422, ["body"])
    assert "unknown variable {{nome}}" in bad.json()["error"]["details"][0]["message"]
    absence = await api.put(
        "/api/v1/settings/out_of_hours_message", json={"value": "Closed, {{nome}}"}, headers=h
    )
    assert absence.status_code == 422
    fine = await api.put(
        "/api/v1/settings/out_of_hours_message", json={"value": "Closed, {{first_name}}"}, headers=h
    )
    assert fine.status_code == 200, fine.text
