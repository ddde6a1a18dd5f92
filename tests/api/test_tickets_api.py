"""The agent inbox as a frontend sees it: filters, search, pages, and who sees which ticket."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.tickets_helpers import (
    World,
    execute,
    new_world,
    queued,
    rows,
    scalar,
    stub_broker,
    walk,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(db: AsyncEngine) -> World:
    return await new_world(db)


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    yield from stub_broker()


ORDER = [
    "q1_pending",
    "q2_open",
    "mine",
    "wallet",
    "unqueued",
    "unqueued_open",
    "closed_q2",
    "closed_mine",
    "closed_alice_wa",
]
AGENT_SEES = ["q1_pending", "mine", "wallet", "unqueued", "closed_mine", "closed_alice_wa"]


def names(world: World, ids: list[int]) -> list[str]:
    by_id = {v: k for k, v in world.tickets.items()}
    return [by_id[i] for i in ids]


async def listed(
    client: httpx.AsyncClient, world: World, query: str, user: str = "admin"
) -> list[str]:
    return names(world, await walk(client, world.auth(user), query))


# Filters and search ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ORDER),
        ("status=pending,open", ORDER[:6]),
        ("status=closed", ["closed_q2", "closed_mine", "closed_alice_wa"]),
        ("status=open,open", ["q2_open", "mine", "wallet", "unqueued_open"]),
        ("queue_id={q2}", ["q2_open", "mine", "wallet", "closed_q2"]),
        ("user_id={agent}", ["mine", "closed_mine"]),
        ("unassigned=true", ["q1_pending", "unqueued", "closed_alice_wa"]),
        ("channel_id={telegram}", ["closed_q2", "closed_mine"]),
        ("tag_id={vip}", ["q1_pending", "closed_mine", "closed_alice_wa"]),
        ("unread_only=true", ["q1_pending", "mine", "unqueued"]),
        ("status=open&queue_id={q2}", ["q2_open", "mine", "wallet"]),
        ("search=alice", ["q1_pending", "closed_mine", "closed_alice_wa"]),
        ("search=%20ALICE%20sou%20", ["q1_pending", "closed_mine", "closed_alice_wa"]),
        ("search=12345", ["q1_pending", "closed_mine", "closed_alice_wa"]),
        ("search=%2B55%2011%2098765", ["q2_open", "closed_q2"]),  # "+55 11 98765"
        ("search=100%25", ["q2_open", "closed_q2"]),  # a literal %, not a wildcard
        ("search=_", ["q2_open", "closed_q2"]),  # a literal _, not a wildcard
        ("search=nobody-by-this-name", []),
    ],
)
async def test_ticket_list_filters_and_search(
    client: httpx.AsyncClient, world: World, query: str, expected: list[str]
) -> None:
    ids = {
        "q2": world.queues["q2"],
        "agent": world.users["agent"],
        "telegram": world.channels["telegram"],
        "vip": world.tags["vip"],
    }

    assert await listed(client, world, query.format(**ids)) == expected


async def test_search_matches_a_protocol_by_its_prefix_only(
    client: httpx.AsyncClient, world: World
) -> None:
    ticket = (
        await client.get(f"/api/v1/tickets/{world.tickets['wallet']}", headers=world.auth("admin"))
    ).json()
    protocol: str = ticket["protocol"]

    assert await listed(client, world, f"search={protocol[:-2]}") == ["wallet"]
    assert await listed(client, world, f"search={protocol.lower()}") == ["wallet"]
    assert await listed(client, world, f"search={protocol[3:]}") == []  # not a prefix


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_filtered_pages_cover_every_ticket_once_in_order(
    client: httpx.AsyncClient, world: World, limit: int
) -> None:
    assert await listed(client, world, f"status=pending,open&limit={limit}") == ORDER[:6]
    assert await listed(client, world, f"limit={limit}", user="agent") == AGENT_SEES


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=bogus", "status"),
        ("status=open,bogus", "status"),
        ("status=open,", "status"),
        ("queue_id=0", "queue_id"),
        ("queue_id=abc", "queue_id"),
        ("user_id=-3", "user_id"),
        ("channel_id=99999999999999999999", "channel_id"),
        ("tag_id=1.5", "tag_id"),
        ("unassigned=maybe", "unassigned"),
        ("unread_only=2", "unread_only"),
        ("search=%20%20", "search"),
        ("search=a%00b", "search"),  # PostgreSQL refuses NUL: a 422, not a 500
        ("search=" + "x" * 101, "search"),
        ("unassigned=true&user_id=5", "unassigned"),
        ("cursor=garbage", "cursor"),
        ("limit=0", "limit"),
    ],
)
async def test_bad_list_parameters_are_named(
    client: httpx.AsyncClient, world: World, query: str, parameter: str
) -> None:
    response = await client.get(f"/api/v1/tickets?{query}", headers=world.auth("admin"))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert parameter in error["message"]
    assert [d["field"] for d in error["details"]] == [parameter]


# Agent visibility -----------------------------------------------------------------------


async def test_agents_see_their_queues_their_tickets_their_wallet_and_the_waiting_room(
    client: httpx.AsyncClient, world: World
) -> None:
    assert await listed(client, world, "", user="agent") == AGENT_SEES
    # agent2 has no queue: their own tickets and the unqueued pending one.
    assert await listed(client, world, "", user="agent2") == [
        "q2_open",
        "wallet",
        "unqueued",
        "unqueued_open",
        "closed_q2",
    ]
    assert await listed(client, world, "", user="supervisor") == ORDER
    assert await listed(client, world, "status=closed", user="agent") == AGENT_SEES[-2:]


async def test_the_tenant_can_hide_unqueued_tickets_from_agents(
    client: httpx.AsyncClient, db: AsyncEngine, world: World
) -> None:
    await execute(
        db,
        "INSERT INTO settings (tenant_id, key, value) VALUES (:t, 'agents_see_unqueued', 'false')",
        t=world.tenant_id,
    )

    assert "unqueued" not in await listed(client, world, "", user="agent")
    response = await client.get(
        f"/api/v1/tickets/{world.tickets['unqueued']}", headers=world.auth("agent")
    )
    assert response.status_code == 404
    assert "unqueued" in await listed(client, world, "", user="supervisor")


async def test_a_setting_that_is_not_a_boolean_leaves_the_default(
    client: httpx.AsyncClient, db: AsyncEngine, world: World
) -> None:
    await execute(
        db,
        "INSERT INTO settings (tenant_id, key, value) VALUES (:t, 'agents_see_unqueued', '\"no\"')",
        t=world.tenant_id,
    )

    assert "unqueued" in await listed(client, world, "", user="agent")


def _every_ticket_endpoint(ticket_id: int) -> list[tuple[str, str, dict[str, object] | None]]:
    base = f"/api/v1/tickets/{ticket_id}"
    return [
        ("GET", base, None),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/messages", {"body": "hello"}),
        ("POST", f"{base}/read", None),
        ("POST", f"{base}/accept", None),
        ("POST", f"{base}/transfer", {"user_id": 1}),
        ("POST", f"{base}/close", {}),
        ("POST", f"{base}/reopen", None),
    ]


@pytest.mark.parametrize("ticket", ["q2_open", "unqueued_open", "closed_q2"])
async def test_a_ticket_outside_an_agents_scope_is_404_on_every_endpoint(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker, ticket: str
) -> None:
    ticket_id = world.tickets[ticket]
    before = await rows(db, "SELECT * FROM tickets WHERE id = :id", id=ticket_id)

    for method, url, body in _every_ticket_endpoint(ticket_id):
        response = await client.request(method, url, json=body, headers=world.auth("agent"))
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["error"]["code"] == "not_found"
        assert "Bob" not in response.text and "Frank" not in response.text

    assert await rows(db, "SELECT * FROM tickets WHERE id = :id", id=ticket_id) == before
    assert (
        await scalar(db, "SELECT count(*) FROM messages WHERE ticket_id = :id", id=ticket_id) == 0
    )
    assert queued(broker, "outbound") == []


async def test_another_tenants_ticket_is_404_on_every_endpoint(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    other = await new_world(db)
    ticket_id = other.tickets["q1_pending"]

    for method, url, body in _every_ticket_endpoint(ticket_id):
        response = await client.request(method, url, json=body, headers=world.auth("admin"))
        assert response.status_code == 404, (method, url, response.text)
        assert "Alice" not in response.text

    assert ticket_id not in await walk(client, world.auth("admin"), "")
    ticket = await rows(db, "SELECT status, unread_count FROM tickets WHERE id = :id", id=ticket_id)
    assert ticket == [{"status": "pending", "unread_count": 3}]


# Detail and read ------------------------------------------------------------------------


async def test_a_ticket_shows_who_accepted_it_and_when(
    client: httpx.AsyncClient, world: World, broker: StubBroker
) -> None:
    url = f"/api/v1/tickets/{world.tickets['q1_pending']}"
    before = (await client.get(url, headers=world.auth("agent"))).json()
    assert before["accepted_at"] is None and before["contact"]["name"] == "Alice Souza"

    await client.post(f"{url}/accept", headers=world.auth("agent"))

    after = (await client.get(url, headers=world.auth("agent"))).json()
    assert after["accepted_at"] is not None
    assert after["user_id"] == world.users["agent"]


async def test_opening_a_ticket_marks_it_read_once(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    ticket_id = world.tickets["q1_pending"]
    url = f"/api/v1/tickets/{ticket_id}/read"

    first = await client.post(url, headers=world.auth("agent"))
    second = await client.post(url, headers=world.auth("agent"))

    assert first.status_code == second.status_code == 200
    assert first.json()["unread_count"] == 0 and first.json()["id"] == ticket_id
    events = await rows(
        db, "SELECT type, user_id, data FROM ticket_events WHERE ticket_id = :id", id=ticket_id
    )
    assert [(e["type"], e["user_id"]) for e in events] == [("read", world.users["agent"])]
    assert events[0]["data"]["unread_count_was"] == 3
    outbox = await rows(
        db,
        "SELECT topic, payload FROM outbox WHERE tenant_id = :t ORDER BY id",
        t=world.tenant_id,
    )
    assert [(o["topic"], o["payload"]["ticket_id"], o["payload"]["action"]) for o in outbox] == [
        ("ticket.updated", ticket_id, "read")
    ]
    outbox_id = await scalar(db, "SELECT id FROM outbox WHERE tenant_id = :t", t=world.tenant_id)
    assert queued(broker, "deliver") == [("publish_outbox", ([outbox_id],))]
