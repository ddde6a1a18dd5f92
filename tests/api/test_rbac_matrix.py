"""The RBAC matrix: every registered endpoint called by every role, by an API client, with no
token and with forged tokens; only the permission table in api/rbac.py decides who gets 403."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.framework import EndpointSpec
from api.rbac import ROLE_PERMISSIONS, ClientPermission, Permission
from engine.security import Role, issue_access_token
from tests.api.access_helpers import (
    ID_KINDS,
    MISSING_ID,
    SPECS,
    bearer,
    call,
    has_id,
    spec_id,
    url,
)
from tests.api.access_world import World, seed_world
from tests.api.helpers import SETTINGS

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.api.access_fixtures"]  # matrix_db, matrix_http (the app), matrix_broker

ROLES: tuple[Role, ...] = ("agent", "supervisor", "admin", "super")
API_CLIENT = "api-client"  # granted every ClientPermission
GRANTABLE = frozenset(p.value for p in ClientPermission)


@pytest.fixture(scope="module")
async def world(matrix_http: httpx.AsyncClient, matrix_db: AsyncEngine) -> World:
    return await seed_world(matrix_http, matrix_db)


def path_of(spec: EndpointSpec, world: World) -> str:
    """The endpoint's URL naming a row of the caller's own tenant (a spare one: see World), or
    a made-up id for a kind not seeded (the permission is checked before any lookup)."""
    if not has_id(spec):
        return url(spec, None)
    kind = ID_KINDS.get(spec.path.split("{id}")[0], "")
    return url(spec, world.ids[kind][0] if kind in world.ids else MISSING_ID)


# Endpoints whose row decides further: the seeded message is the admin's, and deleting
# another person's message takes moderation. (PATCH answers the matrix's empty body 422
# before reading the row; test_scheduled_messages covers its rule.)
ROW_RULES = {"DELETE /api/v1/messages/{id}": Permission.MESSAGES_MODERATE}


def forbidden(spec: EndpointSpec, caller: str) -> bool:
    """What api/rbac.py's table says: a user by role; a client only by a grantable permission."""
    permission = ROW_RULES.get(spec_id(spec), spec.permission)
    if caller == API_CLIENT:  # clients act for the tenant: the endpoint's own grant decides
        permission = spec.permission
        return permission is None or permission.value not in GRANTABLE
    return permission is not None and permission not in ROLE_PERMISSIONS[role_of(caller)]


def role_of(caller: str) -> Role:
    return next(role for role in ROLES if role == caller)


MATRIX = [
    pytest.param(spec, caller, id=f"{spec_id(spec)} as {caller}")
    for spec in SPECS
    for caller in (*ROLES, API_CLIENT)
]
ENDPOINTS = [pytest.param(spec, id=spec_id(spec)) for spec in SPECS]


async def test_the_matrix_covers_every_registered_endpoint() -> None:
    assert len(SPECS) >= 80  # a router dropped from API_ROUTERS would shrink the matrix
    assert len({spec_id(s) for s in SPECS}) == len(SPECS)


@pytest.mark.parametrize(("spec", "caller"), MATRIX)
async def test_only_callers_without_the_permission_get_403(
    matrix_http: httpx.AsyncClient,
    matrix_db: AsyncEngine,
    world: World,
    spec: EndpointSpec,
    caller: str,
) -> None:
    if caller == API_CLIENT:
        headers = {"Authorization": f"Bearer {world.client_token}"}
    else:
        headers = await bearer(matrix_db, world.team, role_of(caller))

    response = await call(matrix_http, spec, path_of(spec, world), headers)

    said = (
        f"{spec_id(spec)} as {caller} ({spec.permission}): {response.status_code} {response.text}"
    )
    if forbidden(spec, caller):
        assert response.status_code == 403, said
        assert response.json()["error"]["code"] == "forbidden", said
    else:
        assert response.status_code not in (401, 403), said
        assert response.status_code < 500, said


@pytest.mark.parametrize("spec", ENDPOINTS)
async def test_no_token_gets_401(
    matrix_http: httpx.AsyncClient, world: World, spec: EndpointSpec
) -> None:
    response = await call(matrix_http, spec, path_of(spec, world), {})

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def forgeries(world: World) -> dict[str, str]:
    """Authorization values that must all be refused, each for its own reason."""
    team = world.team
    claims = {"user_id": team.user_ids["agent"], "tenant_id": team.tenant_id, "ttl_s": 600}

    def token(role: Role = "super", **over: object) -> str:
        values: dict[str, object] = {**claims, "role": role, "token_version": 0}
        values.update({"secret": SETTINGS.JWT_SECRET, **over})
        return issue_access_token(**values)  # type: ignore[arg-type]

    genuine = token("agent")
    head, body, signature = genuine.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    promoted = _b64({**payload, "role": "super"})
    past = datetime.now(UTC) - timedelta(hours=2)
    return {
        "signed with another secret": f"Bearer {token(secret='another-secret-' + 'x' * 32)}",
        "role changed after signing": f"Bearer {head}.{promoted}.{signature}",
        "unsigned (alg none)": f"Bearer {_b64({'alg': 'none', 'typ': 'JWT'})}.{promoted}.",
        "expired": f"Bearer {token(now=past)}",
        "revoked (old token_version)": f"Bearer {token(token_version=-1)}",
        "user of another tenant": f"Bearer {token(tenant_id=team.tenant_id + 10_000)}",
        "unknown API client token": f"Bearer fdk_{secrets.token_urlsafe(32)}",
        "not a bearer token": f"Basic {base64.b64encode(b'admin:admin').decode()}",
    }


@pytest.mark.parametrize("spec", ENDPOINTS)
async def test_forged_tokens_get_401(
    matrix_http: httpx.AsyncClient, world: World, forgeries: dict[str, str], spec: EndpointSpec
) -> None:
    for forgery, authorization in forgeries.items():
        response = await call(
            matrix_http, spec, path_of(spec, world), {"Authorization": authorization}
        )

        assert response.status_code == 401, f"{forgery}: {response.status_code} {response.text}"
        assert response.json()["error"]["code"] == "invalid_token", forgery


async def test_the_table_keeps_management_away_from_agents_and_tenants_for_super_only() -> None:
    """The matrix trusts ROLE_PERMISSIONS; these are the lines it must never lose."""
    agent = ROLE_PERMISSIONS["agent"]
    assert not any(p.value.endswith(".manage") for p in agent)
    assert Permission.MESSAGES_MODERATE not in agent and Permission.STATS_READ not in agent
    assert Permission.CHANNELS_MANAGE not in ROLE_PERMISSIONS["supervisor"]
    assert [r for r, ps in ROLE_PERMISSIONS.items() if Permission.TENANTS_MANAGE in ps] == ["super"]
    assert ROLE_PERMISSIONS["agent"] < ROLE_PERMISSIONS["supervisor"] < ROLE_PERMISSIONS["admin"]
    assert ROLE_PERMISSIONS["admin"] < ROLE_PERMISSIONS["super"]
