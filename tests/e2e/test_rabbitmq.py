"""The same inbound flow and retry policy with RabbitMQ as the broker (AMQP_URL set)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dramatiq
import pika
import pytest
from dramatiq.common import dq_name, xq_name
from sqlalchemy import Engine, text

from actors.broker import build_broker
from actors.middleware import RetryPolicy
from engine.db import system_tx
from engine.errors import PermanentError, RetryableError
from engine.store.dead_letters import NewDeadLetter
from tests.conftest import count, unavailable
from tests.support.harness import fixture_bytes, running_engine, seed_whatsapp, wait_until

pytestmark = pytest.mark.rabbitmq

AMQP_SERVER = os.environ.get("FLOWDESK_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    params = pika.URLParameters(AMQP_SERVER)
    params.socket_timeout = 3
    params.blocked_connection_timeout = 3
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.AMQPError as exc:
        unavailable("RabbitMQ", exc)
    return AMQP_SERVER


@pytest.fixture
def rabbit_queues(amqp_url: str) -> Iterator[set[str]]:
    """Names of queues a test declares; they and their delay/dead queues are deleted after."""
    names: set[str] = set()
    yield names
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for name in names:
            for queue in (name, dq_name(name), xq_name(name)):
                channel.queue_delete(queue)
    finally:
        connection.close()


# The inbound pipeline over RabbitMQ -----------------------------------------------------


def test_inbound_webhooks_flow_through_rabbitmq(
    clean_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
    amqp_url: str,
    rabbit_queues: set[str],
) -> None:
    seeded = seed_whatsapp(clean_db)
    text_body = fixture_bytes("whatsapp", "text.json")
    other_envelope = json.loads(text_body)
    other_envelope["entry"][0]["id"] = "another-envelope"
    with running_engine(
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        amqp_url=amqp_url,
    ) as running:
        queues = running.broker.get_declared_queues()
        rabbit_queues.update(queues)
        # RabbitMQ has no namespaces: this test's queues carry its own prefix, nothing else.
        assert queues and all(q.startswith(f"{queue_prefix}.") for q in queues)
        posts = [
            running.post_whatsapp(seeded.channel_id, text_body),
            running.post_whatsapp(seeded.channel_id, fixture_bytes("whatsapp", "status_read.json")),
            running.post_whatsapp(
                seeded.channel_id, fixture_bytes("whatsapp", "malformed_message.json")
            ),
            running.post_whatsapp(seeded.channel_id, text_body),  # redelivery, same bytes
            running.post_whatsapp(seeded.channel_id, other_envelope),  # same message again
        ]
        assert [p.status_code for p in posts] == [200] * 5
        assert [p.json()["duplicates"] for p in posts] == [0, 0, 0, 1, 0]
        wait_until(
            lambda: count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'pending'") == 0,
            what="inbox processed over RabbitMQ",
        )
        wait_until(
            lambda: count(clean_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0,
            what="outbox published over RabbitMQ",
        )
        running.broker.join(f"{queue_prefix}.inbound", min_successes=2, timeout=10_000)
        running.broker.join(f"{queue_prefix}.deliver", min_successes=2, timeout=10_000)

    with system_tx(clean_db) as conn:
        inbox = dict(conn.execute(text("SELECT status, count(*) FROM inbox GROUP BY status")).all())
    assert inbox == {"processed": 3, "partial": 1}
    # The text message (sent twice more) and the malformed body's good neighbour.
    assert count(clean_db, "SELECT count(*) FROM messages") == 2
    assert count(clean_db, "SELECT count(*) FROM tickets") == 1
    assert count(clean_db, "SELECT unread_count FROM tickets") == 2
    # The read receipt for a message we never stored is kept for when it is.
    assert count(clean_db, "SELECT count(*) FROM message_status_events WHERE status = 'read'") == 1
    assert (
        count(
            clean_db,
            "SELECT count(*) FROM dead_letters WHERE error_class = 'InvalidPayloadError'",
        )
        == 1
    )
    assert count(clean_db, "SELECT count(*) FROM dead_letters") == 1


# Retries through RabbitMQ's delay queues ------------------------------------------------


class Recorded:
    """Dead letters the middleware would have written to the database."""

    def __init__(self) -> None:
        self.items: list[NewDeadLetter] = []
        self.lock = threading.Lock()

    def __call__(self, dead_letter: NewDeadLetter) -> None:
        with self.lock:
            self.items.append(dead_letter)


Declare = Callable[[Callable[[int], None]], dramatiq.Actor]


@pytest.fixture
def rabbit_broker(
    amqp_url: str, queue_prefix: str, rabbit_queues: set[str]
) -> Iterator[tuple[dramatiq.Broker, Recorded, Declare]]:
    """A RabbitMQ broker with our retry middleware, and a way to declare test actors on it."""
    recorded = Recorded()
    broker = build_broker(
        redis_url=None,
        amqp_url=amqp_url,
        namespace=queue_prefix,
        policy=RetryPolicy(max_retries=3, min_backoff_ms=50, max_backoff_ms=100),
        recorder=recorded,
    )

    def declare(fn: Callable[[int], None]) -> dramatiq.Actor:
        queue = f"{queue_prefix}.{fn.__name__}"
        rabbit_queues.add(queue)
        return dramatiq.actor(fn, broker=broker, queue_name=queue, actor_name=queue)

    yield broker, recorded, declare
    broker.close()


@contextmanager
def worker_on(broker: dramatiq.Broker) -> Iterator[None]:
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        yield
    finally:
        worker.stop()


def test_retryable_error_is_retried_after_its_delay_on_rabbitmq(
    rabbit_broker: tuple[dramatiq.Broker, Recorded, Declare],
) -> None:
    broker, recorded, declare = rabbit_broker
    calls: list[float] = []

    def flaky(n: int) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RetryableError("provider timed out", delay_ms=300)

    actor = declare(flaky)
    with worker_on(broker):
        actor.send(1)
        wait_until(lambda: len(calls) >= 2, 15, "the retry")
        time.sleep(0.3)  # nothing further arrives
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.29  # the provider's retry-after was honoured
    assert recorded.items == []


def test_failure_that_never_clears_is_dead_lettered_after_max_retries_on_rabbitmq(
    rabbit_broker: tuple[dramatiq.Broker, Recorded, Declare],
) -> None:
    broker, recorded, declare = rabbit_broker
    calls: list[int] = []

    def always_down(n: int) -> None:
        calls.append(n)
        raise RetryableError("still down")

    def rejected(n: int) -> None:
        calls.append(-n)
        raise PermanentError("recipient blocked")

    down = declare(always_down)
    bad = declare(rejected)
    with worker_on(broker):
        down.send(7)
        bad.send(9)
        wait_until(lambda: len(recorded.items) >= 2, 15, "two dead letters")
        time.sleep(0.3)  # no retry after the dead letter
    assert sorted(calls) == [-9, 7, 7, 7, 7]  # 1 + max_retries attempts; a permanent one once
    by_actor = {d.actor: d for d in recorded.items}
    assert len(recorded.items) == 2
    exhausted = by_actor[down.actor_name]
    assert (exhausted.error_class, exhausted.attempts) == ("RetryableError", 4)
    assert json.loads(exhausted.payload_json)["args"] == [7]
    permanent = by_actor[bad.actor_name]
    assert (permanent.error_class, permanent.attempts) == ("PermanentError", 1)
    assert permanent.error_message == "recipient blocked"
    # Nothing waits to run again; RabbitMQ holds each failed message in the dead queue.
    for actor in (down, bad):
        assert broker.get_queue_message_counts(actor.queue_name) == (0, 0, 1)
