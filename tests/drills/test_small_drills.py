"""Small drills in the normal suite, so the drill machinery cannot rot: real web, worker and
scheduler processes on private servers, struck mid-stream, then checked against the database."""

from __future__ import annotations

import os

import pika
import pytest

from drills.inbound import DRILLS, run_inbound
from drills.report import Row
from drills.workload import build_workload
from tests.conftest import unavailable

EVENTS = 400
AMQP_SERVER = os.environ.get("FLOWDESK_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


def assert_clean(row: Row) -> None:
    assert row.faults >= 1, "the drill never struck"
    assert row.accepted == row.sent == EVENTS
    distinct = build_workload(EVENTS, contacts=EVENTS // 10, run_tag="any").effects
    assert row.applied == len(distinct)
    assert (row.lost, row.duplicated) == (0, 0), row.notes


def test_workers_killed_mid_stream_lose_and_duplicate_nothing() -> None:
    assert_clean(run_inbound(DRILLS["kill-workers"], "redis", events=EVENTS, max_faults=2))


@pytest.mark.rabbitmq
def test_rabbitmq_queues_purged_mid_stream_lose_and_duplicate_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_SERVER)).close()
    except pika.exceptions.AMQPError as exc:
        unavailable("RabbitMQ", exc)
    monkeypatch.setenv("AMQP_URL", AMQP_SERVER)
    assert_clean(run_inbound(DRILLS["broker-loss"], "rabbitmq", events=EVENTS, max_faults=2))
