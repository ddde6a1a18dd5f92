"""Queue depths in GET /ops/queues are what the broker holds: on Redis and on RabbitMQ."""

from __future__ import annotations

import os
from typing import Any

import pika
import pytest
from dramatiq.common import dq_name, xq_name
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from tests.conftest import unavailable
from tests.support.harness import RunningEngine, running_engine, wait_until
from tests.support.ops import OPS_TOKEN, QUEUE, add_dead_letter, ops_get, ops_job

AMQP_SERVER = os.environ.get("FLOWDESK_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
HOUR_MS = 3_600_000


def _queue(engine: RunningEngine, name: str) -> dict[str, Any]:
    r = ops_get(engine, "/ops/queues")
    assert r.status_code == 200, r.text
    return {q["name"]: q for q in r.json()["queues"]}[name]


def _enqueue(ready: int, delayed: int) -> None:
    for i in range(ready):
        ops_job.send(f"ready-{i}")
    for i in range(delayed):
        ops_job.send_with_options(args=(f"later-{i}",), delay=HOUR_MS)


def test_redis_counts_ready_delayed_in_flight_and_dead(
    idle_engine: RunningEngine, clean_db: Engine
) -> None:
    empty = _queue(idle_engine, QUEUE)
    assert (empty["ready"], empty["delayed"], empty["in_flight"], empty["dead"]) == (0, 0, 0, 0)
    assert empty["oldest_age_s"] is None

    _enqueue(ready=5, delayed=3)
    add_dead_letter(clean_db)
    add_dead_letter(clean_db)
    add_dead_letter(clean_db, queue="deliver", actor_name="publish_outbox")
    q = _queue(idle_engine, QUEUE)
    assert (q["ready"], q["delayed"], q["in_flight"], q["dead"]) == (5, 3, 0, 2)
    assert q["oldest_age_s"] is not None and q["oldest_age_s"] >= 0
    assert _queue(idle_engine, "deliver")["dead"] == 1

    # A consumer that fetched messages but has not acked them: they are in flight.
    consumer = idle_engine.broker.consume(QUEUE, prefetch=2, timeout=1000)
    fetched = next(consumer)
    assert fetched is not None
    q = _queue(idle_engine, QUEUE)
    assert q["in_flight"] == 2 and q["ready"] == 3 and q["delayed"] == 3
    consumer.ack(fetched)
    q = _queue(idle_engine, QUEUE)
    assert q["in_flight"] == 1 and q["ready"] == 3
    consumer.close()


def _scraped_depths(engine: RunningEngine, queue: str) -> dict[str, float]:
    with engine.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200, r.text
    return {
        s.labels["state"]: s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if s.name == "flowdesk_queue_depth" and s.labels["queue"] == queue
    }


def test_metrics_count_the_queues_as_the_ops_overview_does(
    idle_engine: RunningEngine, clean_db: Engine
) -> None:
    _enqueue(ready=2, delayed=3)
    add_dead_letter(clean_db)
    # A worker holds delayed messages in memory until their eta: fetched from the delay
    # queue's list, they are still delayed (and not acked).
    consumer = idle_engine.broker.consume(dq_name(QUEUE), prefetch=2, timeout=1000)
    assert next(consumer) is not None

    overview = _queue(idle_engine, QUEUE)
    scraped = _scraped_depths(idle_engine, QUEUE)
    consumer.close()

    assert overview["delayed"] == 3
    assert scraped == {
        "ready": overview["ready"],
        "delayed": overview["delayed"],
        "in_flight": overview["in_flight"],
        "dead": overview["dead"],
    }
    assert scraped["dead"] == 1


@pytest.fixture
def amqp_url() -> str:
    params = pika.URLParameters(AMQP_SERVER)
    params.socket_timeout = 3
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.AMQPError as exc:
        unavailable("RabbitMQ", exc)
    return AMQP_SERVER


@pytest.mark.rabbitmq
def test_rabbitmq_counts_ready_delayed_and_dead_and_says_what_it_cannot_tell(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str, amqp_url: str
) -> None:
    name = f"{queue_prefix}.{QUEUE}"
    try:
        with running_engine(
            database_url=database_url,
            redis_url=redis_url,
            queue_prefix=queue_prefix,
            start_worker=False,
            amqp_url=amqp_url,
            OPS_TOKEN=OPS_TOKEN,
        ) as engine:
            assert ops_get(engine, "/ops/queues").json()["broker"] == "rabbitmq"
            _enqueue(ready=4, delayed=2)
            add_dead_letter(clean_db, queue=name)
            wait_until(
                lambda: (_queue(engine, name)["ready"], _queue(engine, name)["delayed"]) == (4, 2),
                what="RabbitMQ to count the published messages",
            )
            q = _queue(engine, name)
            assert q["dead"] == 1
            assert q["in_flight"] is None and q["oldest_age_s"] is None
            assert any("in-flight" in n for n in ops_get(engine, "/ops/queues").json()["notes"])
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        for queue in (name, dq_name(name), xq_name(name)):
            channel.queue_delete(queue)
        connection.close()
