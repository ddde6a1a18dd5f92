"""Realtime: committed ticket and message events reach the tenant's Redis channel, only it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, text

from engine.db import system_tx
from pipelines.deliver import realtime_channel
from tests.conftest import count
from tests.support.harness import (
    RunningEngine,
    Seeded,
    fixture_bytes,
    running_engine,
    seed_whatsapp,
    wait_until,
)

B_PHONE_NUMBER_ID = "106540352242923"


class Subscriber:
    """A tenant's realtime feed, as a browser tab of that tenant would receive it."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        # Wait for the subscription itself, so nothing published afterwards is missed.
        deadline = time.monotonic() + 5
        while not self.pubsub.subscribed and time.monotonic() < deadline:
            self.pubsub.get_message(timeout=0.1)
        assert self.pubsub.subscribed

    def events(self, *, wait_s: float) -> list[dict[str, Any]]:
        """Everything that arrives within `wait_s`."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.pubsub.get_message(timeout=left)
            if message is not None:
                out.append(json.loads(message["data"]))
        return out

    def until(self, topics: set[str], *, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Events until every topic in `topics` was seen (or the timeout)."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while not topics <= {e["topic"] for e in out}:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"only got {[e['topic'] for e in out]}, wanted {topics}")
            message = self.pubsub.get_message(timeout=left)
            if message is not None:
                out.append(json.loads(message["data"]))
        return out

    def close(self) -> None:
        self.pubsub.close()


@pytest.fixture
def engine_up(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> Iterator[RunningEngine]:
    with running_engine(
        database_url=database_url, redis_url=redis_url, queue_prefix=queue_prefix
    ) as running:
        yield running


@pytest.fixture
def tenants(clean_db: Engine) -> tuple[Seeded, Seeded]:
    return seed_whatsapp(clean_db, name="A"), seed_whatsapp(
        clean_db, name="B", phone_number_id=B_PHONE_NUMBER_ID
    )


@pytest.fixture
def feeds(
    redis_url: str, queue_prefix: str, tenants: tuple[Seeded, Seeded]
) -> Iterator[tuple[Subscriber, Subscriber]]:
    client = redis.Redis.from_url(redis_url)
    a, b = (Subscriber(client, realtime_channel(queue_prefix, t.tenant_id)) for t in tenants)
    yield a, b
    a.close()
    b.close()
    client.close()


def settle(running: RunningEngine, db: Engine, inbox_rows: int) -> None:
    """Wait until `inbox_rows` rows are finished and their delivery work has run."""
    wait_until(
        lambda: count(db, "SELECT count(*) FROM inbox WHERE status <> 'pending'") == inbox_rows,
        what=f"{inbox_rows} inbox rows processed",
    )
    running.drain()


def test_new_message_publishes_ticket_and_message_events_to_its_tenant_only(
    engine_up: RunningEngine,
    clean_db: Engine,
    tenants: tuple[Seeded, Seeded],
    feeds: tuple[Subscriber, Subscriber],
) -> None:
    a, _ = tenants
    feed_a, feed_b = feeds
    body = fixture_bytes("whatsapp", "text.json")
    assert engine_up.post_whatsapp(a.channel_id, body).status_code == 200

    events = feed_a.until({"ticket.created", "message.created"})
    with system_tx(clean_db) as conn:
        ticket_id, contact_id = conn.execute(text("SELECT id, contact_id FROM tickets")).one()
        message_id = conn.execute(text("SELECT id FROM messages")).scalar_one()
    by_topic = {e["topic"]: e for e in events}
    assert len(events) == 2
    assert all(e["tenant_id"] == a.tenant_id for e in events)
    assert by_topic["ticket.created"]["data"] == {
        "ticket_id": ticket_id,
        "contact_id": contact_id,
        "status": "pending",
    }
    created = by_topic["message.created"]["data"]
    assert (created["message_id"], created["ticket_id"], created["contact_id"]) == (
        message_id,
        ticket_id,
        contact_id,
    )
    assert (created["direction"], created["type"]) == ("in", "text")
    # The ticket exists before its first message is announced.
    assert events[0]["topic"] == "ticket.created"
    assert feed_b.events(wait_s=0.5) == []
    assert count(clean_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


def test_redelivered_message_publishes_nothing_new(
    engine_up: RunningEngine,
    clean_db: Engine,
    tenants: tuple[Seeded, Seeded],
    feeds: tuple[Subscriber, Subscriber],
) -> None:
    a, _ = tenants
    feed_a, feed_b = feeds
    body = fixture_bytes("whatsapp", "text.json")
    assert engine_up.post_whatsapp(a.channel_id, body).status_code == 200
    feed_a.until({"ticket.created", "message.created"})
    settle(engine_up, clean_db, 1)

    assert engine_up.post_whatsapp(a.channel_id, body).status_code == 200  # same bytes
    payload = json.loads(body)
    payload["entry"][0]["id"] = "another-envelope"  # same message, new inbox row
    assert engine_up.post_whatsapp(a.channel_id, payload).status_code == 200
    settle(engine_up, clean_db, 2)

    assert feed_a.events(wait_s=0.5) == []
    assert feed_b.events(wait_s=0) == []
    assert count(clean_db, "SELECT count(*) FROM outbox") == 2


def test_delivery_status_of_an_outbound_message_is_published(
    engine_up: RunningEngine,
    clean_db: Engine,
    tenants: tuple[Seeded, Seeded],
    feeds: tuple[Subscriber, Subscriber],
) -> None:
    a, _ = tenants
    feed_a, feed_b = feeds
    assert (
        engine_up.post_whatsapp(a.channel_id, fixture_bytes("whatsapp", "text.json")).status_code
        == 200
    )
    feed_a.until({"ticket.created", "message.created"})
    status_body = fixture_bytes("whatsapp", "status_delivered.json")
    wamid = json.loads(status_body)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    with system_tx(clean_db) as conn:  # an agent's reply, already sent to the provider
        reply_id = conn.execute(
            text(
                """
                INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction,
                    type, body, provider_message_id, status, status_at, send_type)
                SELECT tenant_id, id, contact_id, channel_id, 'out', 'text', 'Already on its way',
                    :wamid, 'sent', :at, 'chat'
                FROM tickets
                RETURNING id
                """
            ),
            {"wamid": wamid, "at": datetime(2025, 6, 18, tzinfo=UTC)},
        ).scalar_one()

    assert engine_up.post_whatsapp(a.channel_id, status_body).status_code == 200

    events = feed_a.until({"message.status"})
    assert [e["data"] for e in events] == [{"message_id": reply_id, "status": "delivered"}]
    assert all(e["tenant_id"] == a.tenant_id for e in events)
    assert count(clean_db, "SELECT count(*) FROM messages WHERE status = 'delivered'") == 1
    # The same status again moves nothing and announces nothing.
    payload = json.loads(status_body)
    payload["entry"][0]["id"] = "another-envelope"
    assert engine_up.post_whatsapp(a.channel_id, payload).status_code == 200
    settle(engine_up, clean_db, 3)
    assert feed_a.events(wait_s=0.5) == []
    assert feed_b.events(wait_s=0) == []
