"""Accept, transfer, close and reopen as an agent does them: state, audit trail, events, sends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.tickets_helpers import World, new_world, queued, rows, scalar, stub_broker

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(db: AsyncEngine) -> World:
    return await new_world(db)


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    yield from stub_broker()


async def act(
    client: httpx.AsyncClient,
    world: World,
    ticket: str,
    action: str,
    body: dict[str, Any] | None = None,
    user: str = "agent",
) -> httpx.Response:
    return await client.post(
        f"/api/v1/tickets/{world.tickets[ticket]}/{action}", json=body, headers=world.auth(user)
    )


async def events(db: AsyncEngine, ticket_id: int) -> list[tuple[str, int | None]]:
    found = await rows(
        db,
        "SELECT type, user_id FROM ticket_events WHERE ticket_id = :id ORDER BY id",
        id=ticket_id,
    )
    return [(e["type"], e["user_id"]) for e in found]


async def announced(db: AsyncEngine, world: World) -> list[tuple[str, int, str]]:
    found = await rows(
        db, "SELECT topic, payload FROM outbox WHERE tenant_id = :t ORDER BY id", t=world.tenant_id
    )
    return [(o["topic"], o["payload"]["ticket_id"], o["payload"].get("action", "")) for o in found]


def assert_conflict(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "conflict"
    for word in words:
        assert word in error["message"], error["message"]


# Accept -------------------------------------------------------------------------------


async def test_accepting_a_pending_ticket_opens_it_for_the_caller(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    ticket_id = world.tickets["q1_pending"]

    response = await act(client, world, "q1_pending", "accept")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["user_id"]) == ("open", world.users["agent"])
    assert body["accepted_at"] is not None
    stored = await rows(
        db, "SELECT first_response_at, answered FROM tickets WHERE id = :id", id=ticket_id
    )
    assert stored == [{"first_response_at": None, "answered": False}]  # no reply yet
    assert await events(db, ticket_id) == [("accepted", world.users["agent"])]
    assert await announced(db, world) == [("ticket.updated", ticket_id, "accepted")]
    assert [actor for actor, _ in queued(broker, "deliver")] == ["publish_outbox"]


@pytest.mark.parametrize(("ticket", "status"), [("mine", "open"), ("closed_mine", "closed")])
async def test_only_a_pending_ticket_can_be_accepted(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, ticket: str, status: str
) -> None:
    response = await act(client, world, ticket, "accept")

    assert_conflict(response, status, "pending", str(world.tickets[ticket]))
    assert await events(db, world.tickets[ticket]) == []
    assert await announced(db, world) == []


# Transfer -----------------------------------------------------------------------------


async def test_transfer_to_a_queue_puts_the_ticket_back_in_its_waiting_list(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    response = await act(client, world, "mine", "transfer", {"queue_id": world.queues["q1"]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["queue_id"], body["user_id"]) == (
        "pending",
        world.queues["q1"],
        None,
    )
    data = await scalar(
        db, "SELECT data FROM ticket_events WHERE ticket_id = :id", id=world.tickets["mine"]
    )
    assert (data["from_queue_id"], data["from_user_id"]) == (
        world.queues["q2"],
        world.users["agent"],
    )
    assert await announced(db, world) == [("ticket.updated", world.tickets["mine"], "transferred")]


async def test_transfer_to_an_agent_assigns_and_opens_it(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    target = {"user_id": world.users["agent2"], "queue_id": world.queues["q2"]}

    response = await act(client, world, "q1_pending", "transfer", target)

    body = response.json()
    assert (body["status"], body["queue_id"], body["user_id"]) == (
        "open",
        world.queues["q2"],
        world.users["agent2"],
    )
    assert await events(db, world.tickets["q1_pending"]) == [("transferred", world.users["agent"])]
    # The agent gave it away: it is now outside their scope.
    again = await act(client, world, "q1_pending", "transfer", {"queue_id": world.queues["q1"]})
    assert again.status_code == 404


async def test_transfer_targets_must_exist_in_the_tenant(
    client: httpx.AsyncClient, db: AsyncEngine, world: World
) -> None:
    other = await new_world(db)
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, {"queue_id", "user_id"}),
        ({"queue_id": None, "user_id": None}, {"queue_id", "user_id"}),
        ({"queue_id": 987654321}, {"queue_id"}),
        ({"queue_id": other.queues["q1"]}, {"queue_id"}),
        ({"user_id": other.users["agent"]}, {"user_id"}),
        ({"user_id": world.users["agent"], "queue_id": 987654321}, {"queue_id"}),
        ({"queue_id": 0}, {"queue_id"}),
        ({"queue_id": "one"}, {"queue_id"}),
        ({"queue_id": world.queues["q1"], "status": "open"}, {"status"}),
    ]
    for body, fields in cases:
        response = await act(client, world, "mine", "transfer", body, user="admin")
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert {d["field"] for d in error["details"]} == fields, body
        for field in fields:
            assert field in error["message"]
    ticket = await rows(
        db, "SELECT queue_id, user_id FROM tickets WHERE id = :id", id=world.tickets["mine"]
    )
    assert ticket == [{"queue_id": world.queues["q2"], "user_id": world.users["agent"]}]
    assert await events(db, world.tickets["mine"]) == []


async def test_a_closed_ticket_cannot_be_transferred(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await act(client, world, "closed_mine", "transfer", {"queue_id": world.queues["q1"]})

    assert_conflict(response, "closed", "reopen")


# Close --------------------------------------------------------------------------------


async def test_closing_a_ticket_records_when_and_who(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    response = await act(client, world, "mine", "close")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "closed"
    assert response.json()["closed_at"] is not None
    assert await events(db, world.tickets["mine"]) == [("closed", world.users["agent"])]
    assert await announced(db, world) == [("ticket.updated", world.tickets["mine"], "closed")]
    assert queued(broker, "outbound") == []  # no farewell, nothing to send

    assert_conflict(await act(client, world, "mine", "close"), "already closed")


async def test_a_farewell_message_goes_out_through_the_outbound_pipeline(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    ticket_id = world.tickets["q1_pending"]

    response = await act(
        client, world, "q1_pending", "close", {"farewell_message": "  Thanks, bye!  "}
    )

    assert response.status_code == 200, response.text
    messages = await rows(
        db,
        "SELECT id, direction, body, status, send_type, user_id FROM messages"
        " WHERE ticket_id = :id",
        id=ticket_id,
    )
    assert len(messages) == 1
    farewell = messages[0]
    assert (farewell["direction"], farewell["body"], farewell["status"]) == (
        "out",
        "Thanks, bye!",
        "pending",
    )
    assert (farewell["send_type"], farewell["user_id"]) == ("chat", world.users["agent"])
    assert queued(broker, "outbound") == [("send_message", (farewell["id"],))]
    assert [t for t, _, _ in await announced(db, world)] == ["ticket.updated", "message.created"]
    assert [e for e, _ in await events(db, ticket_id)] == ["closed", "message_sent"]


@pytest.mark.parametrize(
    "body",
    [
        {"farewell_message": ""},
        {"farewell_message": "   "},
        {"farewell_message": "x" * 4097},
        {"farewell_message": "bye\u0000"},
    ],
)
async def test_a_bad_farewell_is_refused_and_nothing_closes(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, body: dict[str, str]
) -> None:
    response = await act(client, world, "mine", "close", body)

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "farewell_message"
    assert (
        await scalar(db, "SELECT status FROM tickets WHERE id = :id", id=world.tickets["mine"])
        == "open"
    )


async def test_closing_an_already_closed_ticket_sends_no_farewell(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    response = await act(client, world, "closed_mine", "close", {"farewell_message": "bye"})

    assert_conflict(response, "already closed")
    count = await scalar(
        db, "SELECT count(*) FROM messages WHERE ticket_id = :id", id=world.tickets["closed_mine"]
    )
    assert count == 0
    assert queued(broker, "outbound") == []


# Reopen -------------------------------------------------------------------------------


async def test_reopening_assigns_the_ticket_to_the_caller(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    response = await act(client, world, "closed_q2", "reopen", user="supervisor")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["user_id"], body["closed_at"]) == (
        "open",
        world.users["supervisor"],
        None,
    )
    assert await events(db, world.tickets["closed_q2"]) == [("reopened", world.users["supervisor"])]


async def test_reopening_is_refused_while_the_contact_has_a_live_ticket(
    client: httpx.AsyncClient, db: AsyncEngine, world: World
) -> None:
    live = world.tickets["q1_pending"]  # Alice on WhatsApp

    response = await act(client, world, "closed_alice_wa", "reopen")

    assert_conflict(response, f"Ticket {live}", "live")
    status = await scalar(
        db, "SELECT status FROM tickets WHERE id = :id", id=world.tickets["closed_alice_wa"]
    )
    assert status == "closed"
    # Alice's closed Telegram ticket has no live twin on that channel.
    assert (await act(client, world, "closed_mine", "reopen")).status_code == 200


async def test_only_a_closed_ticket_can_be_reopened(
    client: httpx.AsyncClient, world: World
) -> None:
    assert_conflict(await act(client, world, "mine", "reopen"), "open", "closed")


async def test_a_close_then_reopen_round_trip_keeps_one_live_ticket(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    assert (await act(client, world, "mine", "close")).status_code == 200
    assert (await act(client, world, "mine", "reopen")).status_code == 200

    live = await scalar(
        db,
        "SELECT count(*) FROM tickets WHERE contact_id = :c AND status IN ('pending', 'open')",
        c=world.contacts["carol"],
    )
    assert live == 1
    assert [e for e, _ in await events(db, world.tickets["mine"])] == ["closed", "reopened"]
