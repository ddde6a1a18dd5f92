"""Tenant isolation over every registered endpoint: tenant A's admin naming tenant B's rows gets
404 and changes nothing of B's; A's lists never show B's rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.framework import EndpointSpec, path_param_kinds
from tests.api.access_helpers import (
    LIST_KINDS,
    SPECS,
    bearer,
    call,
    has_id,
    id_kind,
    is_list,
    snapshot,
    spec_id,
    url,
)
from tests.api.access_world import World, seed_world

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.api.access_fixtures"]  # matrix_db, matrix_http (the app), matrix_broker

# The platform's tenant endpoints are cross-tenant by design: they exist for a super user to
# run every tenant, so another tenant's id is exactly what they take. The RBAC matrix keeps
# them to `tenants.manage` (super only).
CROSS_TENANT = "tenants"
Snapshot = dict[str, list[str]]


def _params(specs: list[EndpointSpec]) -> list[Any]:
    skip = pytest.mark.skip(reason="tenant endpoints are cross-tenant by design (super only)")
    return [
        pytest.param(spec, id=spec_id(spec), marks=[skip] if spec.tag == CROSS_TENANT else [])
        for spec in specs
    ]


BY_ID = _params([s for s in SPECS if has_id(s)])
LISTS = _params([s for s in SPECS if is_list(s)])
KEYED = _params([s for s in SPECS if any(k == "str" for _, k in path_param_kinds(s.path))])
# Controls: the same calls with A's own ids must reach the row (else a 404 above proves nothing);
# deletes are left out, they would take A's rows from the calls after them.
CONTROLS = _params([s for s in SPECS if has_id(s) and s.method != "DELETE"])


def bodies(a: World) -> dict[str, dict[str, Any]]:
    """A valid body for each endpoint that takes one and names a row, referring only to A's
    rows: so the one thing wrong with the call is the other tenant's id in the path."""
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    reason = {"reason": "isolation test"}
    return {
        "PATCH /api/v1/contacts/{id}": {"name": "Renamed by A"},
        "PUT /api/v1/contacts/{id}/tags": {"tag_ids": [a.ids["tag"][0]]},
        "PUT /api/v1/contacts/{id}/wallet": {"user_id": a.team.user_ids["agent"]},
        "POST /api/v1/contacts/{id}/merge": {"from_contact_id": a.ids["contact"][1]},
        "PATCH /api/v1/tags/{id}": {"name": "Renamed by A"},
        "PATCH /api/v1/queues/{id}": {"name": "Renamed by A"},
        "PUT /api/v1/queues/{id}/members": {"user_ids": [a.team.user_ids["agent"]]},
        "PATCH /api/v1/users/{id}": {"name": "Renamed by A"},
        "PATCH /api/v1/channels/{id}": {"name": "Renamed by A"},
        "PATCH /api/v1/fast-replies/{id}": {"body": "Renamed by A"},
        "PATCH /api/v1/tenants/{id}": {"name": "Renamed by A"},
        "PATCH /api/v1/campaigns/{id}": {"name": "Renamed by A"},
        "POST /api/v1/campaigns/{id}/schedule": {"start_at": later},
        "POST /api/v1/campaigns/{id}/start": reason,
        "POST /api/v1/campaigns/{id}/resume": reason,
        "POST /api/v1/campaigns/{id}/pause": reason,
        "POST /api/v1/campaigns/{id}/cancel": reason,
        "POST /api/v1/tickets/{id}/transfer": {"queue_id": a.ids["queue"][0]},
        "POST /api/v1/tickets/{id}/close": {"farewell_message": "Bye from A"},
        "POST /api/v1/tickets/{id}/messages": {"body": "Hello from A"},
        "PATCH /api/v1/messages/{id}": {"body": "Edited by A"},
        "PATCH /api/v1/webhook-subscriptions/{id}": {"enabled": False},
        "POST /api/v1/webhook-subscriptions/{id}/rotate-secret": {},
        "PUT /api/v1/settings/{key:str}": {"value": "Closed, says A"},
        "PATCH /api/v1/sla/policies/{id}": {"resolution_s": 3600},
        "PATCH /api/v1/chat-flows/{id}": {"name": "Renamed by A"},
        "PATCH /api/v1/auto-replies/{id}": {"reply": "Changed by A"},
        "PATCH /api/v1/auto-tag-rules/{id}": {"pattern": "return"},
        "PUT /api/v1/channels/{id}/chat-flow": {"chat_flow_id": a.ids["chat_flow"][0]},
        "POST /api/v1/contacts/{id}/erase": {"confirm": True},
    }


def body_for(spec: EndpointSpec, a: World) -> dict[str, Any] | None:
    if spec.body is None:
        return None
    known = bodies(a)
    assert spec_id(spec) in known, (
        f"{spec_id(spec)} takes a body: add a valid one to bodies() in "
        "tests/api/test_tenant_isolation.py, so that only the path's id can make it fail"
    )
    return known[spec_id(spec)]


@pytest.fixture(scope="module")
async def a(matrix_http: httpx.AsyncClient, matrix_db: AsyncEngine) -> World:
    return await seed_world(matrix_http, matrix_db)


@pytest.fixture(scope="module")
async def b(matrix_http: httpx.AsyncClient, matrix_db: AsyncEngine) -> World:
    return await seed_world(matrix_http, matrix_db)


@pytest.fixture(scope="module")
async def b_before(matrix_db: AsyncEngine, b: World) -> Snapshot:
    """All of B's rows once seeded: nothing A does may change any of them."""
    return await snapshot(matrix_db, b.team.tenant_id)


@pytest.fixture
async def as_a(matrix_db: AsyncEngine, a: World) -> dict[str, str]:
    return await bearer(matrix_db, a.team, "admin")


async def assert_b_unchanged(db: AsyncEngine, b: World, before: Snapshot, what: str) -> None:
    after = await snapshot(db, b.team.tenant_id)
    changed = [table for table in before if before[table] != after.get(table)]
    assert changed == [], f"{what} changed tenant B's rows in {changed}"


async def test_every_endpoint_naming_a_row_maps_to_a_seeded_kind(a: World) -> None:
    """A new endpoint fails here until someone says which rows it names or lists."""
    kinds = {id_kind(spec) for spec in SPECS if has_id(spec)}
    lists = {spec.path for spec in SPECS if is_list(spec)}
    assert lists <= set(LIST_KINDS), f"unmapped list endpoints: {lists - set(LIST_KINDS)}"
    kinds |= {kind for kind in LIST_KINDS.values() if kind is not None}
    assert kinds <= set(a.ids), f"kinds access_world.seed_world never seeds: {kinds - set(a.ids)}"


@pytest.mark.parametrize("spec", BY_ID)
async def test_another_tenants_id_is_404_and_changes_nothing(
    matrix_http: httpx.AsyncClient,
    matrix_db: AsyncEngine,
    a: World,
    b: World,
    b_before: Snapshot,
    as_a: dict[str, str],
    spec: EndpointSpec,
) -> None:
    kind = id_kind(spec)
    body = body_for(spec, a)
    for b_id in b.ids[kind]:
        response = await call(matrix_http, spec, url(spec, b_id), as_a, body)

        said = f"{spec_id(spec)} with B's {kind} {b_id}: {response.status_code} {response.text}"
        assert response.status_code == 404, said
        assert response.json()["error"]["code"] == "not_found", said
        assert b.label not in response.text, said
    await assert_b_unchanged(matrix_db, b, b_before, spec_id(spec))


def _item_ids(page: dict[str, Any]) -> set[int]:
    return {item["id"] for item in page["items"] if "id" in item}


@pytest.mark.parametrize("spec", LISTS)
async def test_lists_show_only_the_callers_rows(
    matrix_http: httpx.AsyncClient,
    a: World,
    b: World,
    b_before: Snapshot,
    as_a: dict[str, str],
    spec: EndpointSpec,
) -> None:
    path = url(spec, a.ids[id_kind(spec)][0] if has_id(spec) else None)
    query = {"limit": 100} if spec.query is not None and "limit" in spec.query.model_fields else {}

    response = await matrix_http.get(path, params=query, headers=as_a)

    assert response.status_code == 200, f"{spec_id(spec)}: {response.text}"
    assert b.label not in response.text, f"{spec_id(spec)} shows tenant B's rows"
    kind = LIST_KINDS[spec.path]
    if kind is None:  # items without ids (settings): A's own value must be there
        assert a.label in response.text, f"{spec_id(spec)} shows none of A's rows"
        return
    ids = _item_ids(response.json())
    assert ids.isdisjoint(b.ids[kind]), f"{spec_id(spec)} lists B's {kind} ids"
    assert ids & set(a.ids[kind]), f"{spec_id(spec)} lists none of A's {kind} ids: proves nothing"


@pytest.mark.parametrize("spec", KEYED)
async def test_keyed_endpoints_read_and_write_only_the_callers_tenant(
    matrix_http: httpx.AsyncClient,
    matrix_db: AsyncEngine,
    a: World,
    b: World,
    b_before: Snapshot,
    as_a: dict[str, str],
    spec: EndpointSpec,
) -> None:
    """Settings are named by key, the same in every tenant: B set the same key A uses."""
    response = await call(matrix_http, spec, url(spec, None), as_a, body_for(spec, a))

    assert response.status_code == 200, response.text
    assert b.label not in response.text
    await assert_b_unchanged(matrix_db, b, b_before, spec_id(spec))


# Body and query fields naming another tenant's rows: refused (404 or 422 naming the field),
# never acted on. (description, method, path with A's rows, body, the field or subject the
# error must name, so that it is refused for that reference and not for another mistake).
CrossReference = tuple[str, str, str, dict[str, Any], str]


def cross_references(a: World, b: World) -> list[CrossReference]:
    contact, ticket, queue = a.ids["contact"][0], a.ids["ticket"][0], a.ids["queue"][0]
    b_agent = b.team.user_ids["agent"]
    send = {"body": "Hi", "external_key": f"iso-{uuid.uuid4()}"}
    campaign = {"name": "Cross", "variants": [{"body": "Hi"}], "channel_id": a.team.channel_id}
    return [
        ("B's tag on A's contact", "PUT", f"/api/v1/contacts/{contact}/tags",
         {"tag_ids": [b.ids["tag"][0]]}, "tag_ids.0"),
        ("B's agent owning A's contact", "PUT", f"/api/v1/contacts/{contact}/wallet",
         {"user_id": b_agent}, "user_id"),
        ("B's contact merged into A's", "POST", f"/api/v1/contacts/{contact}/merge",
         {"from_contact_id": b.ids["contact"][1]}, "Contact not found"),
        ("B's agent in A's queue", "PUT", f"/api/v1/queues/{queue}/members",
         {"user_ids": [b_agent]}, "user_ids.0"),
        ("A's ticket to B's queue", "POST", f"/api/v1/tickets/{ticket}/transfer",
         {"queue_id": b.ids["queue"][0]}, "queue_id"),
        ("A's ticket to B's agent", "POST", f"/api/v1/tickets/{ticket}/transfer",
         {"user_id": b_agent}, "user_id"),
        ("an API send on B's channel", "POST", "/api/v1/messages",
         {**send, "channel_id": b.team.channel_id, "to": {"phone": "+5511912340000"}},
         "Channel not found"),
        ("an API send to B's contact", "POST", "/api/v1/messages",
         {**send, "channel_id": a.team.channel_id, "to": {"contact_id": b.ids["contact"][1]}},
         "Contact not found"),
        ("a campaign on B's channel", "POST", "/api/v1/campaigns",
         {**campaign, "channel_id": b.team.channel_id,
          "audience": {"contact_ids": [a.ids["contact"][1]]}}, "channel_id"),
        ("a campaign to B's contacts", "POST", "/api/v1/campaigns",
         {**campaign, "audience": {"contact_ids": [b.ids["contact"][1]]}},
         "audience.contact_ids.0"),
        ("a campaign to B's tag", "POST", "/api/v1/campaigns",
         {**campaign, "audience": {"tag_ids": [b.ids["tag"][0]]}}, "audience.tag_ids.0"),
        ("a campaign to B's import", "POST", "/api/v1/campaigns",
         {**campaign, "audience": {"csv_import_id": b.ids["campaign_import"][0]}},
         "audience.csv_import_id"),
        ("an import into B's channel", "POST",
         f"/api/v1/campaigns/imports?channel_id={b.team.channel_id}",
         {"csv": "phone\n+5511912340001\n"}, "channel_id"),
    ]  # fmt: skip


async def test_fields_naming_another_tenants_rows_are_refused(
    matrix_http: httpx.AsyncClient,
    matrix_db: AsyncEngine,
    a: World,
    b: World,
    b_before: Snapshot,
    as_a: dict[str, str],
) -> None:
    for what, method, path, body, why in cross_references(a, b):
        response = await matrix_http.request(method, path, json=body, headers=as_a)

        said = f"{what}: {response.status_code} {response.text}"
        assert response.status_code in (404, 422), said
        if response.status_code == 422:
            assert why in [d["field"] for d in response.json()["error"]["details"]], said
        else:
            assert why in response.json()["error"]["message"], said
        assert b.label not in response.text, said
    await assert_b_unchanged(matrix_db, b, b_before, "fields naming B's rows")


async def test_a_reply_quoting_another_tenants_message_goes_without_the_quote(
    matrix_http: httpx.AsyncClient,
    matrix_db: AsyncEngine,
    a: World,
    b: World,
    b_before: Snapshot,
    as_a: dict[str, str],
) -> None:
    """A quote of a message outside the ticket is dropped (engine/store/outbound.py), the
    reply itself is sent: nothing of B's is linked, shown or changed."""
    body = {"body": "Hi", "quoted_message_id": b.ids["message"][1]}

    response = await matrix_http.post(
        f"/api/v1/tickets/{a.ids['ticket'][0]}/messages", json=body, headers=as_a
    )

    assert response.status_code == 202, response.text
    assert response.json()["quoted_message_id"] is None
    assert b.label not in response.text
    await assert_b_unchanged(matrix_db, b, b_before, "a reply quoting B's message")


@pytest.mark.parametrize("spec", CONTROLS)
async def test_control_the_same_call_with_the_callers_own_row_gets_past_the_lookup(
    matrix_http: httpx.AsyncClient, a: World, as_a: dict[str, str], spec: EndpointSpec
) -> None:
    """Runs last (it changes A's rows). A 404 here means the kind mapping or the body above
    is wrong, and the 404 the isolation test saw proved nothing."""
    kind = id_kind(spec)
    response = await call(matrix_http, spec, url(spec, a.ids[kind][0]), as_a, body_for(spec, a))

    said = f"{spec_id(spec)} with A's own {kind}: {response.status_code} {response.text}"
    assert response.status_code not in (403, 404, 422), said
    assert response.status_code < 500, said
