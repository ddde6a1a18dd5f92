"""Tenants as the platform operator (a super user) manages them."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.resources_helpers import Team, error_fields, scalar

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.api.resources_fixtures"]  # the api, team and other fixtures


def _new_tenant(email: str, **extra: object) -> dict[str, object]:
    return {
        "name": f"Shop {uuid.uuid4().hex[:6]}",
        "time_zone": "America/Sao_Paulo",
        "admin": {"name": "Owner", "email": email, "password": "first admin password"},
        **extra,
    }


async def test_a_super_user_creates_a_tenant_whose_admin_can_sign_in(
    api: httpx.AsyncClient, team: Team
) -> None:
    email = f"owner-{uuid.uuid4().hex}@shop.test"

    response = await api.post("/api/v1/tenants", json=_new_tenant(email), headers=team.as_("super"))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tenant"]["status"] == "active"
    assert body["tenant"]["time_zone"] == "America/Sao_Paulo"
    assert body["tenant"]["user_count"] == 1
    assert (body["admin"]["email"], body["admin"]["role"]) == (email, "admin")
    assert "password" not in response.text
    login = await api.post(
        "/api/v1/auth/login", json={"email": email, "password": "first admin password"}
    )
    assert login.status_code == 200, login.text
    assert login.json()["user"]["tenant_id"] == body["tenant"]["id"]


async def test_a_taken_email_creates_nothing(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    taken = f"admin-{team.label}@team.test"  # the team's own admin
    body = _new_tenant(taken.upper())

    response = await api.post("/api/v1/tenants", json=body, headers=team.as_("super"))

    assert response.status_code == 409
    count = await scalar(db, "SELECT count(*) FROM tenants WHERE name = :n", n=body["name"])
    assert count == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"name": ""}, "name"),
        ({"admin": {"name": "A", "email": "a@b.test", "password": "short"}}, "admin.password"),
        ({"plan": "gold"}, "plan"),
    ],
)
async def test_invalid_tenants_name_the_field(
    api: httpx.AsyncClient, team: Team, change: dict[str, object], field: str
) -> None:
    body = {**_new_tenant(f"x-{uuid.uuid4().hex}@x.test"), **change}

    response = await api.post("/api/v1/tenants", json=body, headers=team.as_("super"))

    assert response.status_code == 422
    assert error_fields(response) == [field]


async def test_only_super_users_manage_tenants(api: httpx.AsyncClient, team: Team) -> None:
    for role in ("admin", "supervisor", "agent"):
        h = team.as_(role)
        assert (await api.get("/api/v1/tenants", headers=h)).status_code == 403, role
        assert (await api.get(f"/api/v1/tenants/{team.tenant_id}", headers=h)).status_code == 403
        created = await api.post(
            "/api/v1/tenants", json=_new_tenant(f"{role}-{uuid.uuid4().hex}@x.test"), headers=h
        )
        assert created.status_code == 403


async def test_suspending_a_tenant_ends_its_users_sessions(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    h = team.as_("super")
    url = f"/api/v1/tenants/{other.tenant_id}"
    assert (await api.get("/api/v1/tags", headers=other.as_("admin"))).status_code == 200

    renamed = await api.patch(
        url, json={"name": "Renamed", "time_zone": "Europe/Lisbon"}, headers=h
    )
    suspended = await api.patch(url, json={"status": "suspended"}, headers=h)
    own = await api.patch(
        f"/api/v1/tenants/{team.tenant_id}", json={"status": "suspended"}, headers=h
    )
    listed = await api.get("/api/v1/tenants?status=suspended&limit=100", headers=h)
    missing = await api.get("/api/v1/tenants/987654321", headers=h)

    assert (renamed.json()["name"], renamed.json()["time_zone"]) == ("Renamed", "Europe/Lisbon")
    assert suspended.json()["status"] == "suspended"
    assert (await api.get("/api/v1/tags", headers=other.as_("admin"))).status_code == 401
    assert own.status_code == 409
    assert other.tenant_id in [t["id"] for t in listed.json()["items"]]
    assert missing.status_code == 404
    reactivated = await api.patch(url, json={"status": "active"}, headers=h)
    assert reactivated.json()["status"] == "active"
    assert (await api.get("/api/v1/tags", headers=other.as_("admin"))).status_code == 200


async def test_tenant_list_pages_with_a_cursor(api: httpx.AsyncClient, team: Team) -> None:
    h = team.as_("super")
    seen: list[int] = []
    cursor = ""
    for _ in range(1000):
        page = (await api.get(f"/api/v1/tenants?limit=3{cursor}", headers=h)).json()
        seen += [t["id"] for t in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == sorted(set(seen))
    assert team.tenant_id in seen
