"""Outbound webhooks end to end: event committed → signed POST to the tenant's receiver, retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, text

from actors.deliver import publish_outbox
from engine.db import system_tx
from engine.store.outbox import insert_outbox
from engine.store.webhooks import insert_subscription
from pipelines import webhooks as webhook_stage
from tests.conftest import count
from tests.support.harness import (
    RunningEngine,
    Seeded,
    fixture_bytes,
    running_engine,
    seed_whatsapp,
    wait_until,
)

SECRET = "tenant-a-webhook-secret-0123"
B_PHONE_NUMBER_ID = "106540352242923"

# What the receiver does on its n-th request (1-based): (status code, seconds to wait first).
Script = Callable[[int], tuple[int, float]]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A tenant's HTTP endpoint, scripted to fail or succeed, recording every request."""

    script: Script
    requests: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hooks/flowdesk") -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.requests.append(
                    Received(
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        time.time(),
                    )
                )
                status, wait_s = receiver.script(len(receiver.requests))
                time.sleep(wait_s)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The documented scheme, computed independently of pipelines.webhooks."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


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


def subscribe(db: Engine, tenant: Seeded, url: str, events: list[str], **kw: Any) -> int:
    with system_tx(db) as conn:
        return insert_subscription(
            conn,
            tenant_id=tenant.tenant_id,
            url=url,
            events=events,
            secret=kw.pop("secret", SECRET),
            **kw,
        ).id


def delivery(db: Engine, subscription_id: int) -> dict[str, Any]:
    with system_tx(db) as conn:
        row = (
            conn.execute(
                text("SELECT * FROM webhook_deliveries WHERE subscription_id = :s"),
                {"s": subscription_id},
            )
            .mappings()
            .one()
        )
    return dict(row)


def delivered(db: Engine, subscription_id: int) -> bool:
    return (
        count(
            db,
            "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = :s"
            " AND delivered_at IS NOT NULL",
            s=subscription_id,
        )
        == 1
    )


def emit(db: Engine, tenant: Seeded, topic: str, **payload: object) -> int:
    """Commit an outbox event the way a pipeline does, then hand it to the deliver actor."""
    with system_tx(db) as conn:
        outbox_id = insert_outbox(conn, tenant_id=tenant.tenant_id, topic=topic, payload=payload)
    publish_outbox.send([outbox_id])
    return outbox_id


def api_deliveries(engine: RunningEngine, tenant: Seeded, subscription_id: int) -> list[Any]:
    with engine.client() as http:
        login = http.post(
            "/api/v1/auth/login",
            json={"email": tenant.admin_email, "password": tenant.admin_password},
        )
        token = login.json()["access_token"]
        response = http.get(
            f"/api/v1/webhook-subscriptions/{subscription_id}/deliveries",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def test_a_failing_receiver_gets_the_event_on_the_third_attempt_signed(
    engine_up: RunningEngine, clean_db: Engine, tenants: tuple[Seeded, Seeded]
) -> None:
    a, b = tenants
    with (
        Receiver(lambda n: (500 if n <= 2 else 204, 0.0)) as receiver,
        Receiver(lambda n: (200, 0.0)) as other_tenant,
    ):
        sub_id = subscribe(clean_db, a, receiver.url(), ["message.created"])
        subscribe(clean_db, b, other_tenant.url(), ["message.created", "ticket.created"])
        started = time.time()
        response = engine_up.post_whatsapp(a.channel_id, fixture_bytes("whatsapp", "text.json"))
        assert response.status_code == 200

        wait_until(lambda: delivered(clean_db, sub_id), 20, "delivery")

        assert len(receiver.requests) == 3
        bodies = {r.body for r in receiver.requests}
        assert len(bodies) == 1  # every attempt sends the same event
        with system_tx(clean_db) as conn:
            message_id, ticket_id = conn.execute(text("SELECT id, ticket_id FROM messages")).one()
            outbox_id = conn.execute(
                text("SELECT id FROM outbox WHERE topic = 'message.created'")
            ).scalar_one()
        event = json.loads(receiver.requests[0].body)
        assert set(event) == {"id", "event", "created_at", "tenant_id", "data"}
        assert (event["id"], event["event"], event["tenant_id"]) == (
            outbox_id,
            "message.created",
            a.tenant_id,
        )
        assert (event["data"]["message_id"], event["data"]["ticket_id"]) == (message_id, ticket_id)
        row = delivery(clean_db, sub_id)
        for request in receiver.requests:
            headers = request.headers
            assert request.path == "/hooks/flowdesk"
            assert headers["content-type"] == "application/json"
            assert headers["x-flowdesk-event"] == "message.created"
            assert headers["x-flowdesk-delivery"] == str(row["id"])
            stamp = headers["x-flowdesk-timestamp"]
            assert started - 5 <= int(stamp) <= time.time() + 5
            assert hmac.compare_digest(
                headers["x-flowdesk-signature"], expected_signature(SECRET, stamp, request.body)
            )
        assert (row["attempts"], row["status_code"], row["error"]) == (3, 204, None)
        assert row["latency_ms"] is not None and row["latency_ms"] >= 0
        assert other_tenant.requests == []  # tenant B never hears of A's events
        [logged] = api_deliveries(engine_up, a, sub_id)
        assert (logged["status"], logged["attempts"], logged["status_code"]) == (
            "delivered",
            3,
            204,
        )
        assert logged["event_id"] == outbox_id
        assert count(clean_db, "SELECT count(*) FROM dead_letters") == 0


def test_a_gone_receiver_is_dead_lettered_at_once(
    engine_up: RunningEngine, clean_db: Engine, tenants: tuple[Seeded, Seeded]
) -> None:
    a, _ = tenants
    with Receiver(lambda n: (410, 0.0)) as receiver:
        sub_id = subscribe(clean_db, a, receiver.url(), ["ticket.updated"])
        emit(clean_db, a, "ticket.updated", ticket_id=7, status="open")

        wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters") == 1, 20, "DLQ")
        time.sleep(0.5)  # a retry, if one were (wrongly) scheduled, would land by now

        assert len(receiver.requests) == 1
        with system_tx(clean_db) as conn:
            dead = conn.execute(
                text("SELECT tenant_id, actor, error_class, attempts FROM dead_letters")
            ).one()
        assert tuple(dead) == (a.tenant_id, "deliver_webhook", "WebhookRejectedError", 1)
        row = delivery(clean_db, sub_id)
        assert (row["attempts"], row["status_code"], row["error"]) == (1, 410, "HTTP 410")
        assert row["delivered_at"] is None
        [logged] = api_deliveries(engine_up, a, sub_id)
        assert logged["status"] == "dead"


def test_a_receiver_that_keeps_failing_is_dead_lettered_after_the_retries(
    engine_up: RunningEngine, clean_db: Engine, tenants: tuple[Seeded, Seeded]
) -> None:
    a, _ = tenants
    retries = engine_up.settings.MAX_RETRIES
    with Receiver(lambda n: (503, 0.0)) as receiver:
        sub_id = subscribe(clean_db, a, receiver.url(), ["contact.updated"])
        emit(clean_db, a, "contact.updated", contact_id=3)

        wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters") == 1, 20, "DLQ")

        assert len(receiver.requests) == retries + 1
        row = delivery(clean_db, sub_id)
        assert (row["attempts"], row["status_code"], row["error"]) == (retries + 1, 503, "HTTP 503")
        assert count(clean_db, "SELECT attempts FROM dead_letters") == retries + 1


def test_a_slow_receiver_times_out_and_is_retried(
    engine_up: RunningEngine,
    clean_db: Engine,
    tenants: tuple[Seeded, Seeded],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _ = tenants
    monkeypatch.setattr(webhook_stage, "WEBHOOK_TIMEOUT", 0.3)
    with Receiver(lambda n: (200, 1.0 if n == 1 else 0.0)) as receiver:
        sub_id = subscribe(clean_db, a, receiver.url(), ["campaign.progress"])
        emit(clean_db, a, "campaign.progress", campaign_id=1, sent=10)

        wait_until(lambda: delivered(clean_db, sub_id), 20, "delivery")

        assert len(receiver.requests) == 2
        assert delivery(clean_db, sub_id)["attempts"] == 2


def test_only_matching_enabled_subscriptions_of_the_tenant_get_a_delivery_once(
    engine_up: RunningEngine, clean_db: Engine, tenants: tuple[Seeded, Seeded]
) -> None:
    a, b = tenants
    with Receiver(lambda n: (200, 0.0)) as receiver:
        wanted = subscribe(clean_db, a, receiver.url("/a"), ["ticket.created", "message.status"])
        subscribe(clean_db, a, receiver.url("/off"), ["ticket.created"], enabled=False)
        subscribe(clean_db, a, receiver.url("/other-topic"), ["contact.updated"])
        subscribe(clean_db, b, receiver.url("/b"), ["ticket.created"])
        outbox_id = emit(clean_db, a, "ticket.created", ticket_id=1, contact_id=2)
        publish_outbox.send([outbox_id])  # a redelivered broker message plans nothing new

        wait_until(lambda: delivered(clean_db, wanted), 20, "delivery")
        time.sleep(0.3)

        assert [r.path for r in receiver.requests] == ["/a"]
        assert count(clean_db, "SELECT count(*) FROM webhook_deliveries") == 1


def test_a_delivery_whose_broker_message_was_lost_is_swept_and_delivered(
    clean_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
    tenants: tuple[Seeded, Seeded],
) -> None:
    from actors import deps as worker_deps
    from actors.maintenance import sweep
    from engine.store.outbox import mark_outbox_published
    from engine.store.webhooks import insert_deliveries
    from tests.support.ops import add_dead_letter

    a, _ = tenants
    with (
        Receiver(lambda n: (204, 0.0)) as receiver,
        running_engine(
            database_url=database_url,
            redis_url=redis_url,
            queue_prefix=queue_prefix,
            INBOX_SWEEP_AFTER_S="5",
        ),
    ):
        sub_id = subscribe(clean_db, a, receiver.url(), ["ticket.created"])
        with system_tx(clean_db) as conn:
            # Planned and committed, but the deliver_webhook message never reached the broker.
            outbox_id = insert_outbox(
                conn, tenant_id=a.tenant_id, topic="ticket.created", payload={"ticket_id": 1}
            )
            mark_outbox_published(conn, [outbox_id])
            insert_deliveries(conn, [outbox_id])
        deps = worker_deps.current()
        assert sweep(deps).webhooks_requeued == 0  # not past its deadline yet
        with system_tx(clean_db) as conn:
            conn.execute(
                text("UPDATE webhook_deliveries SET created_at = now() - interval '1 hour'")
            )
        assert sweep(deps).webhooks_requeued == 1
        wait_until(lambda: delivered(clean_db, sub_id), 10, "swept delivery")
        assert sweep(deps).webhooks_requeued == 0

        # Tried once, and its retry message lost with the broker: offered again once long
        # overdue. One whose retries ended in a dead letter is the operator's, not the sweep's.
        with system_tx(clean_db) as conn:
            lost, dead = (
                insert_outbox(
                    conn, tenant_id=a.tenant_id, topic="ticket.created", payload={"ticket_id": n}
                )
                for n in (2, 3)
            )
            mark_outbox_published(conn, [lost, dead])
            insert_deliveries(conn, [lost, dead])
            conn.execute(
                text(
                    "UPDATE webhook_deliveries SET attempts = 1,"
                    " last_attempt_at = now() - interval '2 hours' WHERE delivered_at IS NULL"
                )
            )
            dead_id = conn.execute(
                text("SELECT id FROM webhook_deliveries WHERE outbox_id = :o"), {"o": dead}
            ).scalar_one()
        # As the sweep's own retries file it: under no tenant.
        add_dead_letter(clean_db, queue="webhooks", actor_name="deliver_webhook")
        with system_tx(clean_db) as conn:
            conn.execute(
                text(
                    "UPDATE dead_letters SET payload = jsonb_set(payload, '{args}',"
                    " jsonb_build_array(CAST(:d AS bigint)))"
                ),
                {"d": dead_id},
            )
        assert sweep(deps).webhooks_requeued == 1
        wait_until(lambda: len(receiver.requests) == 2, 10, "the lost retry delivered")
        assert sweep(deps).webhooks_requeued == 0
    assert len(receiver.requests) == 2
