"""Helpers of the RBAC and tenant-isolation matrices: every endpoint, its kind of row, calls."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import API_ROUTERS, create_app
from api.framework import EndpointSpec, path_param_kinds
from engine.db import async_system_tx
from engine.security import Role, issue_access_token
from tests.api.helpers import SETTINGS
from tests.api.resources_helpers import Team

# Every endpoint the app serves through api.framework: a new one joins both matrices by itself.
SPECS: list[EndpointSpec] = [spec for router in API_ROUTERS for spec, _ in router.specs]

# The kind of row an `{id}` path names, by the path up to `{id}`. An endpoint missing here
# fails the isolation test, so whoever adds it says which of another tenant's ids to try.
ID_KINDS: dict[str, str] = {
    "/api/v1/contacts/": "contact",
    "/api/v1/tags/": "tag",
    "/api/v1/queues/": "queue",
    "/api/v1/users/": "user",
    "/api/v1/channels/": "channel",
    "/api/v1/fast-replies/": "fast_reply",
    "/api/v1/tenants/": "tenant",
    "/api/v1/campaigns/": "campaign",
    "/api/v1/campaigns/imports/": "campaign_import",
    "/api/v1/api-clients/": "api_client",
    "/api/v1/tickets/": "ticket",
    "/api/v1/messages/": "message",
    "/api/v1/webhook-subscriptions/": "webhook_subscription",
    "/api/v1/sla/policies/": "sla_policy",
    "/api/v1/chat-flows/": "chat_flow",
    "/api/v1/auto-replies/": "auto_reply",
    "/api/v1/auto-tag-rules/": "auto_tag_rule",
}
# The kind of row in each list endpoint's `items` (None: items without an id of their own).
LIST_KINDS: dict[str, str | None] = {
    "/api/v1/contacts": "contact",
    "/api/v1/tags": "tag",
    "/api/v1/queues": "queue",
    "/api/v1/users": "user",
    "/api/v1/channels": "channel",
    "/api/v1/settings": None,
    "/api/v1/fast-replies": "fast_reply",
    "/api/v1/tenants": "tenant",
    "/api/v1/campaigns": "campaign",
    "/api/v1/api-clients": "api_client",
    "/api/v1/tickets": "ticket",
    "/api/v1/tickets/{id}/messages": "message",
    "/api/v1/webhook-subscriptions": "webhook_subscription",
    "/api/v1/webhook-subscriptions/{id}/deliveries": "delivery",
    "/api/v1/sla/policies": "sla_policy",
    "/api/v1/sla/events": "sla_event",
    "/api/v1/chat-flows": "chat_flow",
    "/api/v1/auto-replies": "auto_reply",
    "/api/v1/auto-tag-rules": "auto_tag_rule",
}
SETTING_KEY = "out_of_hours_message"  # the `{key:str}` the seed sets in every tenant
MISSING_ID = 999_999_999  # for a kind no tenant was seeded with


def spec_id(spec: EndpointSpec) -> str:
    return f"{spec.method} {spec.path}"


def id_kind(spec: EndpointSpec) -> str:
    """The kind of row `spec`'s `{id}` names; AssertionError naming the endpoint if unmapped."""
    names = [name for name, kind in path_param_kinds(spec.path) if kind == "int"]
    assert names == ["id"], f"{spec_id(spec)}: integer path parameters {names}, expected ['id']"
    prefix = spec.path.split("{id}")[0]
    assert prefix in ID_KINDS, (
        f"{spec_id(spec)}: no resource kind for {prefix!r}; add it to ID_KINDS in "
        "tests/api/access_helpers.py (and seed a row of that kind in access_world.seed_world)"
    )
    return ID_KINDS[prefix]


def has_id(spec: EndpointSpec) -> bool:
    return any(kind == "int" for _, kind in path_param_kinds(spec.path))


def is_list(spec: EndpointSpec) -> bool:
    return (
        spec.method == "GET" and spec.response is not None and "items" in spec.response.model_fields
    )


def url(spec: EndpointSpec, row_id: int | None) -> str:
    path = spec.path.replace("{key:str}", SETTING_KEY)
    return path if row_id is None else path.replace("{id}", str(row_id))


async def call(
    http: httpx.AsyncClient,
    spec: EndpointSpec,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    """One request as `spec` takes it: a JSON body only where the endpoint declares one."""
    if spec.body is None and body is None:
        return await http.request(spec.method, path, headers=headers)
    return await http.request(spec.method, path, headers=headers, json=body or {})


def build_app(db: AsyncEngine) -> Starlette:
    """The production app (every route, middleware and handler) over the test database.

    Its lifespan is not run: the deps it would build are set here, without Redis (rate limits
    off) and with the broker the caller bound (tests use a StubBroker).
    """
    app = create_app(SETTINGS)
    app.state.deps = SimpleNamespace(settings=SETTINGS, db=db)
    return app


async def bearer(db: AsyncEngine, team: Team, role: Role) -> dict[str, str]:
    """The headers of `team`'s user with `role`, as the user's sessions stand now (a logout
    or a revocation bumps token_version and ends earlier tokens)."""
    user_id = team.user_ids[role]
    async with async_system_tx(db) as conn:
        version = (
            await conn.execute(
                text("SELECT token_version FROM users WHERE id = :u"), {"u": user_id}
            )
        ).scalar_one()
    token = issue_access_token(
        user_id=user_id,
        tenant_id=team.tenant_id,
        role=role,
        token_version=int(version),
        secret=SETTINGS.JWT_SECRET,
        ttl_s=600,
    )
    return {"Authorization": f"Bearer {token}"}


async def snapshot(db: AsyncEngine, tenant_id: int) -> dict[str, list[str]]:
    """Every row of the tenant in every table (and its tenants row), as JSON text."""
    async with async_system_tx(db) as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE column_name ="
                    " 'tenant_id' AND table_schema = current_schema() ORDER BY table_name"
                )
            )
        ).scalars()
        out: dict[str, list[str]] = {}
        for table in [*tables, "tenants"]:
            column = "id" if table == "tenants" else "tenant_id"
            # Identifiers come from the catalog, not from input: quoting them is enough.
            rows = await conn.execute(
                text(
                    f'SELECT to_jsonb(r)::text AS j FROM "{table}" r WHERE {column} = :t ORDER BY j'
                ),
                {"t": tenant_id},
            )
            out[table] = list(rows.scalars())
    return out
