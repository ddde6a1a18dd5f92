"""SLA over the REST API: admins manage policies (validated), supervisors list breaches."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import Principal
from api.realtime_access import Visibility
from engine.db import tenant_tx
from engine.routing.sla import check_sla
from engine.store.ticket_actions import mark_ticket_transferred
from tests.routing.world import Desk, new_desk

pytestmark = pytest.mark.anyio


def error_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


async def test_admins_manage_policies_and_bad_ones_name_the_field(
    api: httpx.AsyncClient, desk: Desk, db: Engine
) -> None:
    desk.agent("admin", role="admin")
    desk.agent("boss", role="supervisor")
    desk.agent("ana")
    desk.queue("sales")
    foreign_queue = new_desk(db).queue("theirs")
    h = desk.auth("admin")
    body = {"name": "Sales SLA", "queue_id": desk.queues["sales"], "first_response_s": 900}

    no_target = await api.post(
        "/api/v1/sla/policies", json={"name": "x", "queue_id": desk.queues["sales"]}, headers=h
    )
    assert error_fields(no_target) == ["first_response_s", "next_response_s", "resolution_s"]
    foreign = await api.post(
        "/api/v1/sla/policies", json={**body, "escalate_to_queue_id": foreign_queue}, headers=h
    )
    assert error_fields(foreign) == ["escalate_to_queue_id"]
    both = await api.post(
        "/api/v1/sla/policies", json={**body, "tag_id": desk.tag("vip")}, headers=h
    )
    assert error_fields(both) == ["queue_id", "tag_id"]
    negative = await api.post("/api/v1/sla/policies", json={**body, "resolution_s": 0}, headers=h)
    assert error_fields(negative) == ["resolution_s"]

    created = await api.post(
        "/api/v1/sla/policies", json={**body, "escalate_to_user_id": desk.users["boss"]}, headers=h
    )
    assert created.status_code == 201, created.text
    policy = created.json()
    assert (policy["first_response_s"], policy["business_hours_only"]) == (900, True)
    url = f"/api/v1/sla/policies/{policy['id']}"
    assert (await api.post("/api/v1/sla/policies", json=body, headers=h)).status_code == 409

    emptied = await api.patch(url, json={"first_response_s": None}, headers=h)
    assert error_fields(emptied) == ["first_response_s", "next_response_s", "resolution_s"]
    changed = await api.patch(url, json={"resolution_s": 3600}, headers=h)
    assert changed.json()["resolution_s"] == 3600

    assert (
        await api.post("/api/v1/sla/policies", json=body, headers=desk.auth("boss"))
    ).status_code == 403
    assert (await api.get("/api/v1/sla/policies", headers=desk.auth("ana"))).status_code == 403
    listed = await api.get("/api/v1/sla/policies", headers=desk.auth("boss"))
    assert [p["id"] for p in listed.json()["items"]] == [policy["id"]]
    assert (await api.delete(url, headers=h)).status_code == 204
    assert (await api.get(url, headers=h)).status_code == 404


async def test_supervisors_list_breaches_by_ticket_and_time(
    api: httpx.AsyncClient, desk: Desk
) -> None:
    desk.agent("boss", role="supervisor")
    desk.agent("ana")
    desk.execute(
        "INSERT INTO sla_policies (tenant_id, name, first_response_s, business_hours_only)"
        " VALUES (:t, 'fast', 60, false)"
    )
    first = desk.ticket(created_at=datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    second = desk.ticket(created_at=datetime(2026, 3, 6, 13, 0, tzinfo=UTC))
    for hour in (12, 14):
        with tenant_tx(desk.db, desk.tenant_id) as conn:
            check_sla(
                conn, tenant_id=desk.tenant_id, now=datetime(2026, 3, 6, hour, 30, tzinfo=UTC)
            )
    h = desk.auth("boss")

    everything = (await api.get("/api/v1/sla/events", headers=h)).json()["items"]
    assert [(e["ticket_id"], e["kind"]) for e in everything] == [
        (first, "first_response"),
        (second, "first_response"),
    ]
    one = await api.get(f"/api/v1/sla/events?ticket_id={second}", headers=h)
    assert [e["ticket_id"] for e in one.json()["items"]] == [second]
    late = await api.get("/api/v1/sla/events?since=2026-03-06T14:00:00Z", headers=h)
    assert [e["ticket_id"] for e in late.json()["items"]] == [second]
    assert error_fields(await api.get("/api/v1/sla/events?since=yesterday", headers=h)) == ["since"]
    assert (await api.get("/api/v1/sla/events", headers=desk.auth("ana"))).status_code == 403


async def test_a_transfer_reaches_the_agent_it_leaves_and_the_one_it_reaches(
    adb: AsyncEngine, desk: Desk
) -> None:
    desk.queue("sales")
    ana = desk.agent("ana", queues=("sales",))
    bia = desk.agent("bia")
    ticket_id = desk.ticket(queue="sales", status="open", user="ana")
    with tenant_tx(desk.db, desk.tenant_id) as conn:
        result = mark_ticket_transferred(
            conn,
            tenant_id=desk.tenant_id,
            ticket_id=ticket_id,
            user_id=ana,
            to_queue_id=None,
            to_user_id=bia,
        )
    event = desk.rows("SELECT topic, payload FROM outbox WHERE id = :id", id=result.outbox_ids[0])
    topic, data = event[0]["topic"], event[0]["payload"]
    desk.execute("DELETE FROM user_queues WHERE user_id = :u", u=ana)  # ana loses sight of it
    carl = desk.agent("carl")

    def viewer(user_id: int) -> Visibility:
        return Visibility(adb, Principal(user_id=user_id, tenant_id=desk.tenant_id, role="agent"))

    assert await viewer(ana).allows(topic, data)
    assert await viewer(bia).allows(topic, data)
    assert not await viewer(carl).allows(topic, data)
    breach = {"ticket_id": ticket_id, "kind": "first_response"}
    assert await viewer(bia).allows("sla.breached", breach)
    assert not await viewer(carl).allows("sla.breached", breach)
