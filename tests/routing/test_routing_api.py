"""Routing through the REST API: queue hours and policy, agent presence, visibility settings."""

from __future__ import annotations

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import Principal
from engine.db import async_tenant_tx
from engine.queries.visibility import ticket_visible_to
from tests.api.tickets_helpers import queued
from tests.routing.world import Desk

pytestmark = pytest.mark.anyio

HOURS = {
    "time_zone": "America/Sao_Paulo",
    "week": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]},
    "holidays": ["2026-12-25"],
}


def error_fields(response: httpx.Response) -> list[str]:
    return [d["field"] for d in response.json()["error"]["details"]]


async def test_a_queue_keeps_its_business_hours_and_policy(
    api: httpx.AsyncClient, desk: Desk
) -> None:
    desk.agent("admin", role="admin")
    h = desk.auth("admin")

    created = await api.post(
        "/api/v1/queues",
        json={"name": "Sales", "distribution": "round_robin", "business_hours": HOURS},
        headers=h,
    )

    assert created.status_code == 201, created.text
    queue = created.json()
    assert (queue["distribution"], queue["business_hours"]) == ("round_robin", HOURS)
    url = f"/api/v1/queues/{queue['id']}"
    assert (await api.get(url, headers=h)).json()["business_hours"] == HOURS
    listed = (await api.get("/api/v1/queues", headers=h)).json()["items"]
    assert [q["business_hours"] for q in listed] == [HOURS]

    renamed = await api.patch(url, json={"name": "Sales BR"}, headers=h)
    assert renamed.json()["business_hours"] == HOURS  # untouched when not sent
    cleared = await api.patch(url, json={"business_hours": None}, headers=h)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["business_hours"] is None


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        ({**HOURS, "time_zone": "Sao Paulo"}, "business_hours.time_zone"),
        (
            {**HOURS, "week": {"tue": [{"start": "08:00", "end": "09:00"}] * 3}},
            "business_hours.week.tue",
        ),
        ({**HOURS, "holidays": ["25/12/2026"]}, "business_hours.holidays.0"),
        ({**HOURS, "open": True}, "business_hours.open"),
    ],
)
async def test_invalid_queue_hours_are_rejected_naming_the_field(
    api: httpx.AsyncClient, desk: Desk, hours: dict[str, object], field: str
) -> None:
    desk.agent("admin", role="admin")

    response = await api.post(
        "/api/v1/queues",
        json={"name": "Sales", "business_hours": hours},
        headers=desk.auth("admin"),
    )

    assert response.status_code == 422, response.text
    assert field in error_fields(response)


async def test_an_agent_going_online_receives_waiting_tickets_and_offline_stops(
    api: httpx.AsyncClient, desk: Desk, broker: StubBroker
) -> None:
    desk.queue("sales", distribution="round_robin")
    ana = desk.agent("ana", queues=("sales",), online=False, max_open=2)
    waiting = [desk.ticket(queue="sales", age_s=60 - n) for n in range(3)]

    online = await api.put("/api/v1/me/presence", json={"online": True}, headers=desk.auth("ana"))

    assert online.status_code == 200, online.text
    assert online.json()["online"] is True
    assert [desk.assignee(t) for t in waiting] == [ana, ana, None]
    announced = desk.rows("SELECT id FROM outbox WHERE payload->>'action' = 'assigned'")
    assert queued(broker, "deliver") == [("publish_outbox", ([o["id"] for o in announced],))]

    offline = await api.put("/api/v1/me/presence", json={"online": False}, headers=desk.auth("ana"))
    assert offline.json()["online"] is False
    desk.agent("admin", role="admin")
    raised = await api.patch(
        f"/api/v1/users/{ana}", json={"max_open_tickets": 5}, headers=desk.auth("admin")
    )
    assert raised.status_code == 200, raised.text
    assert desk.assignee(waiting[2]) is None  # offline agents receive nothing

    bad = await api.put("/api/v1/me/presence", json={"online": "yes"}, headers=desk.auth("ana"))
    assert bad.status_code == 422
    assert error_fields(bad) == ["online"]


async def test_raising_capacity_hands_out_waiting_tickets(
    api: httpx.AsyncClient, desk: Desk, broker: StubBroker
) -> None:
    desk.queue("sales", distribution="least_loaded")
    ana = desk.agent("ana", queues=("sales",), max_open=0)
    desk.agent("admin", role="admin")
    ticket_id = desk.ticket(queue="sales")

    response = await api.patch(
        f"/api/v1/users/{ana}", json={"max_open_tickets": 1}, headers=desk.auth("admin")
    )

    assert response.status_code == 200, response.text
    assert desk.assignee(ticket_id) == ana


async def ids_seen(api: httpx.AsyncClient, desk: Desk, user: str) -> set[int]:
    response = await api.get("/api/v1/tickets?limit=100", headers=desk.auth(user))
    assert response.status_code == 200, response.text
    return {t["id"] for t in response.json()["items"]}


async def seen_one_by_one(
    api: httpx.AsyncClient, adb: AsyncEngine, desk: Desk, user: str, ticket_ids: list[int]
) -> tuple[set[int], set[int]]:
    """The tickets `user` may open by id over REST, and those realtime would show them."""
    rest = set()
    for ticket_id in ticket_ids:
        response = await api.get(f"/api/v1/tickets/{ticket_id}", headers=desk.auth(user))
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            rest.add(ticket_id)
    principal = Principal(user_id=desk.users[user], tenant_id=desk.tenant_id, role="agent")
    live = set()
    async with async_tenant_tx(adb, desk.tenant_id) as conn:
        for ticket_id in ticket_ids:
            if await ticket_visible_to(conn, principal, ticket_id):
                live.add(ticket_id)
    return rest, live


async def test_visibility_settings_apply_to_list_detail_and_realtime_alike(
    api: httpx.AsyncClient, adb: AsyncEngine, desk: Desk
) -> None:
    desk.queue("sales")
    desk.agent("ana", queues=("sales",))
    desk.agent("boss", role="supervisor")
    mine = desk.ticket(queue="sales")
    bot = desk.ticket(queue="sales", bot=True)
    unqueued = desk.ticket()
    unqueued_bot = desk.ticket(bot=True)
    everything = [mine, bot, unqueued, unqueued_bot]

    assert await ids_seen(api, desk, "ana") == set(everything)  # the defaults

    desk.set_setting("hide_bot_tickets_from_agents", True)
    assert await ids_seen(api, desk, "ana") == {mine, unqueued}
    assert await seen_one_by_one(api, adb, desk, "ana", everything) == (
        {mine, unqueued},
        {mine, unqueued},
    )

    desk.set_setting("agents_see_unqueued", False)
    assert await ids_seen(api, desk, "ana") == {mine}
    assert await seen_one_by_one(api, adb, desk, "ana", everything) == ({mine}, {mine})

    assert await ids_seen(api, desk, "boss") == set(everything)  # supervisors see everything
