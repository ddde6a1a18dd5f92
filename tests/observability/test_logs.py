"""Log lines: redaction, fields passed in `extra`, and the ids bound per broker message."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from prometheus_client import REGISTRY

from actors.middleware import RetriesWithDeadLetters, RetryPolicy
from actors.observability import WorkObservability
from engine.errors import RetryableError
from engine.logs import bind_context, clear_context, formatter, new_correlation_id
from engine.store.dead_letters import NewDeadLetter


class Captured:
    """Every JSON line logged during a test, as the production formatter writes them."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def logged() -> Iterator[Captured]:
    captured = Captured()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield captured
    root.removeHandler(handler)
    root.setLevel(previous)
    clear_context()


def test_personal_data_and_secrets_never_reach_a_line(logged: Captured) -> None:
    log = logging.getLogger("tests.redaction")
    log.info(
        "reply to +5511987654321 or ana.lima@example.com failed",
        extra={
            "body": "my card ends 4242",
            "app_secret": "s3cr3t-value",
            "Authorization": "Bearer abc.def",
            "payload": {"to": "15551234567", "text": "hello", "note": "call 5511987654321"},
            "channel_id": 7,
            "to_status": "open",
            "body_bytes": 17,
        },
    )
    try:
        raise ValueError("provider said: number 5511987654321 is blocked")
    except ValueError:
        log.exception("send crashed")
    first, second = logged.lines()
    assert first["msg"] == "reply to [phone] or [email] failed"
    assert first["body"] == first["app_secret"] == first["Authorization"] == "[redacted]"
    assert first["payload"] == {"to": "[redacted]", "text": "[redacted]", "note": "call [phone]"}
    assert (first["channel_id"], first["to_status"], first["body_bytes"]) == (7, "open", 17)
    assert "5511987654321" not in second["exception"]
    assert "ValueError: provider said: number [phone] is blocked" in second["exception"]


def test_tokens_in_free_text_never_reach_a_line(logged: Captured) -> None:
    # As uvicorn logs a WebSocket handshake: with its path and query string. (Its own logger
    # is configured by whichever test ran the server last; the masking is the same for all.)
    log = logging.getLogger("tests.redaction")
    log.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/api/v1/ws?token=eyJ.a-b_c.d")
    log.info("client fdk_AbC-123_xyz sent Authorization: Bearer eyJ.abc.def")
    log.info("GET /webhooks/whatsapp/4?hub.mode=subscribe&hub.verify_token=v3r1fy&x=1")

    lines = "\n".join(line["msg"] for line in logged.lines())

    for secret in ("eyJ.a-b_c.d", "fdk_AbC-123_xyz", "eyJ.abc.def", "v3r1fy"):
        assert secret not in lines
    assert "/api/v1/ws?token=[redacted]" in lines
    assert "hub.verify_token=[redacted]&x=1" in lines


def test_ordinary_text_that_looks_a_little_like_a_secret_is_kept(logged: Captured) -> None:
    log = logging.getLogger("tests.redaction")
    log.info("GET /api/v1/tickets?sort_key=created_at&limit=20")
    log.info("the bearer of this note")
    log.info("?" + "key" * 5000 + " =1")  # a long name that is no parameter: linear time

    first, second, third = (line["msg"] for line in logged.lines())
    assert first == "GET /api/v1/tickets?sort_key=created_at&limit=20"
    assert second == "the bearer of this note"
    assert third == "?" + "key" * 5000 + " =1"


def test_bound_ids_are_on_every_line_until_cleared(logged: Captured) -> None:
    log = logging.getLogger("tests.context")
    bind_context(tenant_id=3, ticket_id=None, correlation_id="req-12345678")
    log.info("first", extra={"stage": "route"})
    clear_context()
    log.info("second")
    first, second = logged.lines()
    assert (first["tenant_id"], first["correlation_id"], first["stage"]) == (
        3,
        "req-12345678",
        "route",
    )
    assert "ticket_id" not in first
    assert "correlation_id" not in second and "tenant_id" not in second
    assert first["level"] == "info" and first["logger"] == "tests.context" and first["ts"]


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("3f2b8c1e-a1b2-4c3d-9e8f-0123456789ab", True),
        ("req_2026:abc.DEF-1", True),
        ("short", False),
        ("has spaces in it", False),
        ('{"json": 1}', False),
        ("+5511987654321", False),
        ("5511987654321", False),
        ("x" * 101, False),
        (None, False),
    ],
)
def test_correlation_ids_offered_by_callers(offered: str | None, kept: bool) -> None:
    chosen = new_correlation_id(offered)
    assert (chosen == offered) is kept
    assert new_correlation_id(chosen) == chosen


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    dead: list[NewDeadLetter] = []
    stub = StubBroker(
        middleware=[
            WorkObservability(),
            CurrentMessage(),
            RetriesWithDeadLetters(
                policy=RetryPolicy(max_retries=1, min_backoff_ms=10, max_backoff_ms=20),
                recorder=dead.append,
            ),
        ]
    )
    stub.emit_after("process_boot")
    yield stub
    stub.close()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_message_is_one_line_with_its_ids_and_sends_inherit_them(
    broker: StubBroker, logged: Captured
) -> None:
    @dramatiq.actor(broker=broker, queue_name="obs_deliver", actor_name="obs_deliver")
    def deliver(ticket_id: int) -> None:
        logging.getLogger("tests.actor").info("delivering", extra={"ticket_id": ticket_id})

    @dramatiq.actor(broker=broker, queue_name="obs_inbound", actor_name="obs_inbound")
    def inbound() -> None:
        deliver.send(42)

    before = _sample(
        "flowdesk_actor_messages_total", actor="obs_deliver", queue="obs_deliver", outcome="ok"
    )
    bind_context(correlation_id="req-abcdef123")
    message = inbound.send_with_options(tenant_id=9)
    clear_context()
    assert message.options["correlation_id"] == "req-abcdef123"
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join("obs_inbound")
        broker.join("obs_deliver")
        worker.join()
    finally:
        worker.stop()
    processed = {
        line["actor"]: line for line in logged.lines() if line["msg"] == "message processed"
    }
    assert set(processed) == {"obs_inbound", "obs_deliver"}
    for line in processed.values():
        assert line["correlation_id"] == "req-abcdef123"
        assert line["outcome"] == "ok" and line["attempt"] == 1
        assert isinstance(line["duration_ms"], float)
    assert processed["obs_inbound"]["tenant_id"] == 9
    delivering = next(line for line in logged.lines() if line["msg"] == "delivering")
    assert delivering["actor"] == "obs_deliver" and delivering["ticket_id"] == 42
    assert delivering["correlation_id"] == "req-abcdef123"
    after = _sample(
        "flowdesk_actor_messages_total", actor="obs_deliver", queue="obs_deliver", outcome="ok"
    )
    assert after == before + 1


def test_failures_are_counted_as_retries_then_dead_letters(
    broker: StubBroker, logged: Captured
) -> None:
    @dramatiq.actor(broker=broker, queue_name="obs_flaky", actor_name="obs_flaky")
    def flaky() -> None:
        raise RetryableError("provider timed out")

    labels = {"actor": "obs_flaky", "queue": "obs_flaky"}
    retries = _sample("flowdesk_retries_total", **labels)
    dead = _sample("flowdesk_dead_letters_total", **labels)
    flaky.send()
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join("obs_flaky", fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    assert _sample("flowdesk_retries_total", **labels) == retries + 1
    assert _sample("flowdesk_dead_letters_total", **labels) == dead + 1
    outcomes = [
        (line["attempt"], line["outcome"], line["error"])
        for line in logged.lines()
        if line["msg"] == "message processed"
    ]
    assert outcomes == [(1, "failed", "RetryableError"), (2, "failed", "RetryableError")]
    retry_line = next(line for line in logged.lines() if line["msg"] == "retrying")
    assert retry_line["actor"] == "obs_flaky" and retry_line["attempt"] == 1
