"""Retries and dead letters on a real Redis broker and worker: what an operator sees on failure."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dramatiq
import pytest
from sqlalchemy import Engine, text

from actors.broker import actor, bind_actors, build_broker
from actors.middleware import RetryPolicy
from engine.db import system_tx
from engine.errors import PermanentError, RetryableError
from engine.store.dead_letters import NewDeadLetter, insert_dead_letter
from engine.store.tenants import insert_tenant
from tests.conftest import count
from tests.support.harness import wait_until

QUEUE = "retries-under-test"
CAPPED_MAX_RETRIES = 2

Failure = Callable[[int], BaseException | None]


@dataclass
class Script:
    """What a scripted job does on each attempt (1-based), and when each attempt started."""

    key: str
    fail: Failure
    started_s: list[float] = field(default_factory=list)
    succeeded: threading.Event = field(default_factory=threading.Event)


_SCRIPTS: dict[str, Script] = {}


def _run_script(key: str) -> None:
    script = _SCRIPTS[key]
    script.started_s.append(time.monotonic())
    error = script.fail(len(script.started_s))
    if error is not None:
        raise error
    script.succeeded.set()


@actor(queue_name=QUEUE)
def scripted_job(key: str, order: dict[str, int]) -> None:
    _run_script(key)


@actor(queue_name=QUEUE, max_retries=CAPPED_MAX_RETRIES)
def capped_job(key: str, order: dict[str, int]) -> None:
    _run_script(key)


class DbRecorder:
    """Writes dead letters to the real database, or fails `failures_left` times first."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self.failures_left = 0
        self.calls = 0

    def __call__(self, dl: NewDeadLetter) -> None:
        self.calls += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ConnectionError("database is down")
        with system_tx(self.db) as conn:
            insert_dead_letter(conn, dl)


@dataclass
class Rig:
    broker: dramatiq.Broker
    recorder: DbRecorder
    db: Engine

    def run(
        self, fail: Failure, job: dramatiq.Actor[..., None] = scripted_job, **options: object
    ) -> Script:
        key = uuid.uuid4().hex
        script = _SCRIPTS[key] = Script(key, fail)
        job.send_with_options(args=(key, {"order": 42}), **options)
        return script

    def dead_letters(self) -> list[dict[str, object]]:
        with system_tx(self.db) as conn:
            rows = conn.execute(
                text(
                    "SELECT tenant_id, actor, queue, message_id, payload, error_class, "
                    "error_message, traceback, attempts FROM dead_letters ORDER BY id"
                )
            ).mappings()
            return [dict(r) for r in rows]

    def settle(self) -> None:
        """Wait until nothing is queued, delayed or in flight on the test queue."""
        self.broker.join(QUEUE, timeout=8_000)


@pytest.fixture
def rig(clean_db: Engine, redis_url: str, queue_prefix: str) -> Iterator[Rig]:
    recorder = DbRecorder(clean_db)
    broker = build_broker(
        redis_url=redis_url,
        amqp_url=None,
        namespace=queue_prefix,
        policy=RetryPolicy(max_retries=3, min_backoff_ms=20, max_backoff_ms=80),
        recorder=recorder,
    )
    bind_actors(broker)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        yield Rig(broker, recorder, clean_db)
    finally:
        worker.stop()
        broker.close()
        _SCRIPTS.clear()


def test_retryable_error_twice_then_success_runs_three_times_without_dead_letter(
    rig: Rig,
) -> None:
    script = rig.run(lambda n: RetryableError("provider timed out") if n <= 2 else None)
    assert script.succeeded.wait(8), f"job never succeeded after {len(script.started_s)} attempts"
    rig.settle()
    assert len(script.started_s) == 3
    assert rig.dead_letters() == []
    assert rig.recorder.calls == 0


def test_retry_after_from_the_provider_is_honoured(rig: Rig) -> None:
    script = rig.run(lambda n: RetryableError("429", delay_ms=300) if n == 1 else None)
    assert script.succeeded.wait(8)
    first, second = script.started_s
    # The policy alone would retry within 80 ms; the provider asked for 300 ms.
    assert second - first >= 0.25
    assert rig.dead_letters() == []


def test_permanent_error_is_dead_lettered_at_once_with_everything_needed_to_requeue(
    rig: Rig,
) -> None:
    with system_tx(rig.db) as conn:
        tenant_id = insert_tenant(conn, name="Acme")
    script = rig.run(
        lambda n: PermanentError("recipient blocked the business"), tenant_id=tenant_id
    )
    wait_until(lambda: count(rig.db, "SELECT count(*) FROM dead_letters") == 1, 8, "dead letter")
    rig.settle()
    assert len(script.started_s) == 1
    [dl] = rig.dead_letters()
    assert dl["tenant_id"] == tenant_id
    assert dl["actor"] == "scripted_job"
    assert dl["queue"] == QUEUE
    assert dl["error_class"] == "PermanentError"
    assert dl["error_message"] == "recipient blocked the business"
    assert dl["attempts"] == 1
    tb = str(dl["traceback"])
    assert "PermanentError: recipient blocked the business" in tb
    assert "_run_script" in tb
    payload = dl["payload"]
    assert isinstance(payload, dict)
    assert payload["actor_name"] == "scripted_job"
    assert payload["queue_name"] == QUEUE
    assert payload["args"] == [script.key, {"order": 42}]
    assert payload["message_id"] == dl["message_id"]
    assert "retries" not in payload["options"]
    assert "traceback" not in payload["options"]


def test_unexpected_error_is_retried_up_to_max_retries_then_dead_lettered(rig: Rig) -> None:
    script = rig.run(lambda n: ValueError(f"bug on attempt {n}"), job=capped_job)
    wait_until(lambda: count(rig.db, "SELECT count(*) FROM dead_letters") == 1, 8, "dead letter")
    rig.settle()
    assert len(script.started_s) == CAPPED_MAX_RETRIES + 1
    [dl] = rig.dead_letters()
    assert dl["actor"] == "capped_job"
    assert dl["error_class"] == "ValueError"
    assert dl["error_message"] == f"bug on attempt {CAPPED_MAX_RETRIES + 1}"
    assert dl["attempts"] == CAPPED_MAX_RETRIES + 1


def test_a_failure_is_not_lost_when_its_dead_letter_cannot_be_written(rig: Rig) -> None:
    rig.recorder.failures_left = 2
    script = rig.run(lambda n: PermanentError("invalid number"))
    wait_until(lambda: count(rig.db, "SELECT count(*) FROM dead_letters") == 1, 8, "dead letter")
    rig.settle()
    # Each failed write sent the message round again instead of dropping it.
    assert len(script.started_s) == 3
    assert rig.recorder.calls == 3
    [dl] = rig.dead_letters()
    assert dl["error_class"] == "PermanentError"
    assert dl["attempts"] == 3


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 10, 20, 40, 1000])
def test_backoff_is_jittered_between_min_and_exponential_ceiling_capped_at_max(
    attempt: int,
) -> None:
    policy = RetryPolicy(max_retries=8, min_backoff_ms=500, max_backoff_ms=60_000)
    ceiling = min(policy.max_backoff_ms, policy.min_backoff_ms * 2**attempt)
    samples = [policy.backoff_ms(attempt) for _ in range(500)]
    assert all(policy.min_backoff_ms <= s <= ceiling for s in samples)
    if attempt == 0:
        assert set(samples) == {policy.min_backoff_ms}
    else:
        assert len(set(samples)) > 10  # jittered, so retries of a burst spread out
