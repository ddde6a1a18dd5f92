"""Scheduled replies: they wait, can be edited or cancelled, and the scheduler sends each once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.scheduler import send_due_messages
from engine.db import system_tx
from engine.store.outbound import claim_for_send, get_unsent_ids
from engine.store.send_batch import release_sends
from tests.api.tickets_helpers import (
    World,
    execute,
    new_world,
    queued,
    rows,
    scalar,
    stub_broker,
    sync_engine,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(db: AsyncEngine) -> World:
    return await new_world(db)


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    yield from stub_broker()


@pytest.fixture
def engine(db: AsyncEngine) -> Iterator[Engine]:
    sync = sync_engine(db)
    yield sync
    sync.dispose()


def _unsent(conn: Connection) -> list[int]:
    return get_unsent_ids(conn, older_than_s=60, retry_lost_after_s=3600, limit=10_000)


def in_(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def send(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], ticket: str = "mine"
) -> httpx.Response:
    return await client.post(
        f"/api/v1/tickets/{world.tickets[ticket]}/messages", json=body, headers=world.auth("agent")
    )


async def schedule(client: httpx.AsyncClient, world: World, body: str = "Reminder") -> int:
    response = await send(client, world, {"body": body, "send_at": in_(hours=2)})
    assert response.status_code == 202, response.text
    message_id: int = response.json()["id"]
    return message_id


async def make_due(db: AsyncEngine, *message_ids: int) -> None:
    await execute(
        db,
        "UPDATE messages SET scheduled_at = now() - interval '1 minute' WHERE id = ANY(:ids)",
        ids=list(message_ids),
    )


# Sending now and scheduling ---------------------------------------------------------------


async def test_a_reply_is_recorded_pending_and_enqueued_at_once(
    client: httpx.AsyncClient, world: World, broker: StubBroker
) -> None:
    response = await send(client, world, {"body": "On it!"})

    assert response.status_code == 202, response.text
    message = response.json()
    assert (message["status"], message["send_type"], message["scheduled_at"]) == (
        "pending",
        "chat",
        None,
    )
    assert queued(broker, "outbound") == [("send_message", (message["id"],))]


async def test_a_scheduled_message_waits_and_is_not_enqueued(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    send_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)

    response = await send(
        client, world, {"body": "Your visit is tomorrow", "send_at": send_at.isoformat()}
    )

    assert response.status_code == 202, response.text
    message = response.json()
    assert (message["status"], message["send_type"]) == ("pending", "schedule")
    assert datetime.fromisoformat(message["scheduled_at"]) == send_at
    assert queued(broker, "outbound") == []
    listed = await client.get(
        f"/api/v1/tickets/{world.tickets['mine']}/messages", headers=world.auth("agent")
    )
    assert [m["scheduled_at"] is not None for m in listed.json()["items"]] == [True]
    # Nothing went out yet, so the ticket is not answered by it.
    ticket = await rows(
        db,
        "SELECT answered, first_response_at FROM tickets WHERE id = :id",
        id=world.tickets["mine"],
    )
    assert ticket == [{"answered": False, "first_response_at": None}]


@pytest.mark.parametrize(
    ("send_at", "reason"),
    [
        (lambda: in_(minutes=-1), "future"),
        (lambda: in_(seconds=0), "future"),
        (lambda: in_(days=30, minutes=5), "30 days"),
        (lambda: "2030-01-01T10:00:00", "timezone"),
        (lambda: "tomorrow", "datetime"),
    ],
)
async def test_send_at_must_be_a_future_time_within_30_days(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, send_at: Any, reason: str
) -> None:
    response = await send(client, world, {"body": "later", "send_at": send_at()})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert [d["field"] for d in error["details"]] == ["send_at"]
    assert reason in error["details"][0]["message"].lower()
    assert (
        await scalar(
            db, "SELECT count(*) FROM messages WHERE ticket_id = :id", id=world.tickets["mine"]
        )
        == 0
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "a\u0000b"}, "body"),
        ({"body": "\ud800"}, "body"),  # a lone surrogate cannot be stored as UTF-8
        ({"template": {"name": "t", "parameters": ["x\u0000"]}}, "template"),
        ({"body": "x", "send_at": None, "priority": 1}, "priority"),
    ],
)
async def test_a_reply_that_cannot_be_stored_is_refused_naming_the_field(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, body: dict[str, Any], field: str
) -> None:
    response = await client.post(
        f"/api/v1/tickets/{world.tickets['mine']}/messages",
        content=json.dumps(body).encode(),  # ASCII escapes: a lone surrogate travels as \ud800
        headers={**world.auth("agent"), "Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    count = await scalar(
        db, "SELECT count(*) FROM messages WHERE ticket_id = :id", id=world.tickets["mine"]
    )
    assert count == 0


# The scheduler ----------------------------------------------------------------------------


async def test_the_scheduler_sends_each_due_message_exactly_once(
    client: httpx.AsyncClient, db: AsyncEngine, engine: Engine, world: World
) -> None:
    due = [await schedule(client, world, f"reminder {i}") for i in range(12)]
    later = await schedule(client, world, "not yet")
    await make_due(db, *due)
    with system_tx(engine) as conn:
        assert claim_for_send(conn, due[0]) is None  # a premature send is a no-op
    enqueued: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def fire() -> None:
        def enqueue(message_id: int) -> None:
            with lock:
                enqueued.append(message_id)

        start.wait()
        send_due_messages(engine, enqueue)

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    mine = Counter(i for i in enqueued if i in set(due) | {later})
    assert mine == Counter(due)  # every due message once; the later one not at all
    assert send_due_messages(engine, enqueued.append) == []  # a third fire finds nothing
    stored = await rows(
        db,
        "SELECT id, status, scheduled_at FROM messages WHERE id = ANY(:ids) ORDER BY id",
        ids=[*due, later],
    )
    assert [(m["status"], m["scheduled_at"] is None) for m in stored] == [
        *[("pending", True)] * len(due),
        ("pending", False),
    ]
    with system_tx(engine) as conn:
        job = claim_for_send(conn, due[0])  # released: a worker can send it now
    assert job is not None and job.body == "reminder 0"
    answered = await scalar(
        db, "SELECT answered FROM tickets WHERE id = :id", id=world.tickets["mine"]
    )
    assert answered is True


async def test_the_sweeper_leaves_scheduled_messages_to_the_scheduler(
    client: httpx.AsyncClient, db: AsyncEngine, engine: Engine, world: World
) -> None:
    message_id = await schedule(client, world)
    await execute(
        db,
        "UPDATE messages SET created_at = now() - interval '1 day',"
        " status_at = now() - interval '1 day' WHERE id = :id",
        id=message_id,
    )

    with system_tx(engine) as conn:
        assert message_id not in _unsent(conn)
    await make_due(db, message_id)
    assert message_id in send_due_messages(engine, lambda _: None)
    with system_tx(engine) as conn:  # just released: not stale, whatever its age
        assert message_id not in _unsent(conn)


async def test_the_sweeper_reoffers_sends_nothing_will_finish_and_only_those(
    client: httpx.AsyncClient, db: AsyncEngine, engine: Engine, world: World
) -> None:
    replies = {}
    for name in ("worker_died", "retry_lost", "backing_off", "in_flight", "fresh"):
        response = await send(client, world, {"body": name})
        replies[name] = response.json()["id"]
    states = {
        "worker_died": "send_attempts = 1, sending_at = now() - interval '1 hour'",
        "retry_lost": "send_attempts = 1, released_at = now() - interval '2 hours'",
        "backing_off": "send_attempts = 2, released_at = now() - interval '5 minutes'",
        "in_flight": "send_attempts = 1, sending_at = now() - interval '10 seconds'",
        "fresh": "send_attempts = 0",
    }
    for name, state in states.items():
        await execute(
            db,
            f"UPDATE messages SET {state}, created_at = now() - interval '3 hours',"
            f" status_at = now() - interval '3 hours' WHERE id = :id",
            id=replies[name],
        )
    await execute(db, "UPDATE messages SET status_at = now() WHERE id = :id", id=replies["fresh"])

    with system_tx(engine) as conn:
        offered = set(_unsent(conn)) & set(replies.values())
        # A re-offered send is taken once: the dead worker's lease has long expired.
        claimed = claim_for_send(conn, replies["worker_died"])

    assert offered == {replies["worker_died"], replies["retry_lost"]}
    assert claimed is not None and claimed.message_id == replies["worker_died"]


async def test_the_sweep_query_takes_the_largest_deadline_settings_allow(
    engine: Engine,
) -> None:
    with system_tx(engine) as conn:  # small ints travel as int2: their sum must not overflow
        assert isinstance(
            get_unsent_ids(conn, older_than_s=32_767, retry_lost_after_s=3600, limit=1), list
        )


async def test_a_send_handed_back_for_a_retry_records_when(
    client: httpx.AsyncClient, db: AsyncEngine, engine: Engine, world: World
) -> None:
    message_id = (await send(client, world, {"body": "again later"})).json()["id"]
    with system_tx(engine) as conn:
        assert claim_for_send(conn, message_id) is not None
        release_sends(conn, [(message_id, False)])

    [row] = await rows(
        db,
        "SELECT send_attempts, sending_at, released_at > now() - interval '1 minute' AS recent"
        " FROM messages WHERE id = :id",
        id=message_id,
    )
    assert row == {"send_attempts": 1, "sending_at": None, "recent": True}


# Cancel -----------------------------------------------------------------------------------


async def test_cancelling_a_scheduled_message_keeps_it_from_ever_going_out(
    client: httpx.AsyncClient, db: AsyncEngine, engine: Engine, world: World, broker: StubBroker
) -> None:
    message_id = await schedule(client, world)

    response = await client.delete(f"/api/v1/messages/{message_id}", headers=world.auth("agent"))

    assert response.status_code == 200, response.text
    message = response.json()
    assert (message["status"], message["error_code"], message["scheduled_at"]) == (
        "failed",
        "cancelled",
        None,
    )
    await make_due(db, message_id)
    assert message_id not in send_due_messages(engine, lambda _: None)
    again = await client.delete(f"/api/v1/messages/{message_id}", headers=world.auth("agent"))
    assert again.status_code == 409
    assert "already failed" in again.json()["error"]["message"]
    events = await rows(
        db,
        "SELECT type, user_id FROM ticket_events WHERE ticket_id = :id ORDER BY id",
        id=world.tickets["mine"],
    )
    assert events[-1] == {"type": "message_cancelled", "user_id": world.users["agent"]}


async def test_a_pending_reply_can_be_cancelled_until_a_worker_claims_it(
    client: httpx.AsyncClient, db: AsyncEngine, engine: Engine, world: World, broker: StubBroker
) -> None:
    first = (await send(client, world, {"body": "oops"})).json()["id"]
    second = (await send(client, world, {"body": "fine"})).json()["id"]
    with system_tx(engine) as conn:
        assert claim_for_send(conn, second) is not None  # a worker is sending it

    cancelled = await client.delete(f"/api/v1/messages/{first}", headers=world.auth("agent"))
    too_late = await client.delete(f"/api/v1/messages/{second}", headers=world.auth("agent"))

    assert cancelled.status_code == 200
    assert too_late.status_code == 409
    assert "being sent" in too_late.json()["error"]["message"]
    with system_tx(engine) as conn:
        assert claim_for_send(conn, first) is None  # the queued send finds nothing to do


async def test_received_and_sent_messages_cannot_be_cancelled(
    client: httpx.AsyncClient, db: AsyncEngine, world: World
) -> None:
    inbound = await scalar(
        db,
        "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, type,"
        " body, status) SELECT tenant_id, id, contact_id, channel_id, 'in', 'text', 'hi',"
        " 'received' FROM tickets WHERE id = :id RETURNING id",
        id=world.tickets["mine"],
    )
    sent = await scalar(
        db,
        "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, type,"
        " body, status, user_id) SELECT tenant_id, id, contact_id, channel_id, 'out', 'text',"
        " 'yo', 'delivered', :agent FROM tickets WHERE id = :id RETURNING id",
        id=world.tickets["mine"],
        agent=world.users["agent"],
    )

    for message_id, words in ((inbound, "received"), (sent, "already delivered")):
        response = await client.delete(
            f"/api/v1/messages/{message_id}", headers=world.auth("agent")
        )
        assert response.status_code == 409
        assert words in response.json()["error"]["message"]


# Edit -------------------------------------------------------------------------------------


async def test_a_scheduled_message_can_be_edited_until_it_is_released(
    client: httpx.AsyncClient, db: AsyncEngine, engine: Engine, world: World
) -> None:
    message_id = await schedule(client, world, "See you at 10")
    url = f"/api/v1/messages/{message_id}"

    edited = await client.patch(url, json={"body": "See you at 11"}, headers=world.auth("agent"))

    assert edited.status_code == 200, edited.text
    assert (edited.json()["body"], edited.json()["scheduled_at"] is not None) == (
        "See you at 11",
        True,
    )
    await make_due(db, message_id)
    send_due_messages(engine, lambda _: None)
    with system_tx(engine) as conn:
        job = claim_for_send(conn, message_id)
    assert job is not None and job.body == "See you at 11"  # what goes out is the edit
    too_late = await client.patch(url, json={"body": "11:30?"}, headers=world.auth("agent"))
    assert too_late.status_code == 409
    assert "not supported" in too_late.json()["error"]["message"]


async def test_a_scheduled_media_message_edits_its_caption(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await send(
        client,
        world,
        {
            "media_url": "https://files.example/menu.pdf",
            "media_type": "document",
            "body": "Menu",
            "send_at": in_(hours=1),
        },
    )
    message_id = response.json()["id"]

    edited = await client.patch(
        f"/api/v1/messages/{message_id}", json={"body": "New menu"}, headers=world.auth("agent")
    )

    assert edited.status_code == 200, edited.text
    assert edited.json()["body"] == "New menu"
    assert edited.json()["media"][0]["caption"] == "New menu"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": ""}, "body"),
        ({}, "body"),
        ({"body": "x", "status": "sent"}, "status"),
        ({"body": "a\u0000b"}, "body"),
    ],
)
async def test_a_bad_edit_is_refused_naming_the_field(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    message_id = await schedule(client, world)

    response = await client.patch(
        f"/api/v1/messages/{message_id}", json=body, headers=world.auth("agent")
    )

    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


async def test_only_a_supervisor_may_change_another_persons_message(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    # The supervisor writes on the agent's ticket; each may see the other's message.
    response = await client.post(
        f"/api/v1/tickets/{world.tickets['mine']}/messages",
        json={"body": "From the supervisor", "send_at": in_(hours=2)},
        headers=world.auth("supervisor"),
    )
    theirs = response.json()["id"]
    mine = await schedule(client, world, "From the agent")

    for method, body in (("PATCH", {"body": "changed by the agent"}), ("DELETE", None)):
        refused = await client.request(
            method, f"/api/v1/messages/{theirs}", json=body, headers=world.auth("agent")
        )
        assert refused.status_code == 403, (method, refused.text)
    edited = await client.patch(
        f"/api/v1/messages/{mine}",
        json={"body": "moderated"},
        headers=world.auth("supervisor"),
    )
    own = await client.delete(f"/api/v1/messages/{mine}", headers=world.auth("agent"))

    assert edited.status_code == 200, edited.text
    assert own.status_code == 200, own.text
    assert await rows(db, "SELECT body, status FROM messages WHERE id = :id", id=theirs) == [
        {"body": "From the supervisor", "status": "pending"}
    ]


async def test_messages_outside_the_callers_scope_are_404(
    client: httpx.AsyncClient, db: AsyncEngine, world: World, broker: StubBroker
) -> None:
    other = await new_world(db)
    response = await client.post(
        f"/api/v1/tickets/{world.tickets['q2_open']}/messages",
        json={"body": "x", "send_at": in_(hours=1)},
        headers=world.auth("admin"),
    )
    hidden = response.json()["id"]  # q2 is not the agent's queue
    foreign = await send(client, other, {"body": "y", "send_at": in_(hours=1)})
    foreign_id = foreign.json()["id"]

    for user, message_id in (("agent", hidden), ("admin", foreign_id), ("admin", 987654321)):
        for method, body in (("DELETE", None), ("PATCH", {"body": "z"})):
            answer = await client.request(
                method, f"/api/v1/messages/{message_id}", json=body, headers=world.auth(user)
            )
            assert answer.status_code == 404, (user, method, answer.text)
            assert answer.json()["error"]["message"] == "Message not found."
    bodies = await rows(
        db,
        "SELECT body, status FROM messages WHERE id = ANY(:ids) ORDER BY id",
        ids=[hidden, foreign_id],
    )
    assert bodies == [{"body": "x", "status": "pending"}, {"body": "y", "status": "pending"}]
