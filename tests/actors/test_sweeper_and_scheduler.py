"""The sweeper re-offers work the broker lost; the scheduler runs it on exactly one leader."""

from __future__ import annotations

import json
import time

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, text

from actors import deliver as deliver_actor
from actors import deps as worker_deps
from actors import maintenance
from actors import scheduler as scheduler_module
from actors.inbound import process_inbox
from actors.maintenance import sweep
from engine.db import system_tx
from pipelines.deliver import realtime_channel
from tests.conftest import count
from tests.support.engines import EngineOf
from tests.support.harness import (
    RunningEngine,
    fixture_bytes,
    seed_whatsapp,
    wait_until,
)
from tests.support.scheduler import scheduler_thread

SWEEP_AFTER_S = 5


def _text_webhook(message_id: str, body: str) -> bytes:
    payload = json.loads(fixture_bytes("whatsapp", "text.json"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"] = message_id
    message["text"]["body"] = body
    return json.dumps(payload).encode()


def _queued_inbox_ids(running: RunningEngine, prefix: str) -> set[int]:
    """Inbox ids carried by process_inbox messages now sitting in Redis."""
    client = redis.Redis.from_url(running.settings.redis_url())
    ids: set[int] = set()
    for raw in client.hvals(f"{prefix}:inbound.msgs"):
        ids.update(dramatiq.Message.decode(raw).args[0])
    return ids


def _inbox_ids(db: Engine) -> set[int]:
    with system_tx(db) as conn:
        return {r[0] for r in conn.execute(text("SELECT id FROM inbox"))}


def _backdate(db: Engine, table: str, *, seconds: int) -> None:
    """Pretend a table's rows were written `seconds` ago, so the sweep deadline has passed."""
    columns = {"inbox": ("received_at", "enqueued_at"), "outbox": ("created_at",)}[table]
    sets = ", ".join(f"{c} = now() - make_interval(secs => :s)" for c in columns)
    with system_tx(db) as conn:
        conn.execute(text(f"UPDATE {table} SET {sets}"), {"s": seconds})


def _lose_everything_enqueued(running: RunningEngine, db: Engine, prefix: str) -> None:
    """Wait for the web process to enqueue every inbox row, then flush the broker."""
    wait_until(
        lambda: _queued_inbox_ids(running, prefix) >= _inbox_ids(db), 10, "inbox rows enqueued"
    )
    running.broker.flush_all()


@pytest.fixture
def engine_paused(engine_of: EngineOf, clean_db: Engine) -> RunningEngine:
    return engine_of(start_worker=False, INBOX_SWEEP_AFTER_S=str(SWEEP_AFTER_S))


def test_inbox_rows_lost_by_the_broker_are_swept_and_stored_exactly_once(
    engine_paused: RunningEngine, clean_db: Engine, queue_prefix: str
) -> None:
    seeded = seed_whatsapp(clean_db)
    for i in range(3):
        body = _text_webhook(f"wamid.sweep-{i}", f"message {i}")
        assert engine_paused.post_whatsapp(seeded.channel_id, body).status_code == 200
    _lose_everything_enqueued(engine_paused, clean_db, queue_prefix)
    assert engine_paused.worker is not None
    engine_paused.worker.start()
    engine_paused.drain(wait_for_inbox=False)  # the broker lost them: they stay pending
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'pending'") == 3
    deps = worker_deps.current()

    # Within the deadline the rows may still be on their way: nothing is re-offered yet.
    assert sweep(deps).inbox_requeued == 0
    _backdate(clean_db, "inbox", seconds=SWEEP_AFTER_S + 60)
    assert sweep(deps).inbox_requeued == 3
    # The re-offer restarted the deadline: an immediate second sweep offers nothing twice.
    assert sweep(deps).inbox_requeued == 0
    engine_paused.drain()

    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'processed'") == 3
    assert count(clean_db, "SELECT count(*) FROM messages") == 3
    assert (
        count(
            clean_db,
            "SELECT count(DISTINCT provider_message_id) FROM messages "
            "WHERE provider_message_id LIKE 'wamid.sweep-%'",
        )
        == 3
    )
    assert count(clean_db, "SELECT unread_count FROM tickets") == 3
    _backdate(clean_db, "inbox", seconds=SWEEP_AFTER_S + 60)
    assert sweep(deps).inbox_requeued == 0  # processed rows are never offered again


def test_outbox_events_whose_publish_was_lost_are_republished(
    engine_paused: RunningEngine,
    clean_db: Engine,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeded = seed_whatsapp(clean_db)
    body = _text_webhook("wamid.outbox-1", "hello")
    assert engine_paused.post_whatsapp(seeded.channel_id, body).status_code == 200
    _lose_everything_enqueued(engine_paused, clean_db, queue_prefix)

    # Process the row here with Redis failing right after the commit, as a crash would.
    def redis_down(*_: object) -> int:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(deliver_actor, "publish_events", redis_down)
    process_inbox(sorted(_inbox_ids(clean_db)))
    monkeypatch.undo()
    engine_paused.broker.flush_all()
    assert count(clean_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 2

    subscriber = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(realtime_channel(queue_prefix, seeded.tenant_id))
    subscriber.get_message(timeout=1)  # the subscribe confirmation
    assert engine_paused.worker is not None
    engine_paused.worker.start()
    deps = worker_deps.current()
    assert sweep(deps).outbox_requeued == 0  # not stale yet
    _backdate(clean_db, "outbox", seconds=SWEEP_AFTER_S + 60)
    assert sweep(deps).outbox_requeued == 2

    received: list[dict[str, object]] = []
    deadline = time.monotonic() + 8
    while len(received) < 2 and time.monotonic() < deadline:
        message = subscriber.get_message(timeout=0.2)
        if message is not None:
            received.append(json.loads(message["data"]))
    subscriber.close()
    assert sorted(str(e["topic"]) for e in received) == ["message.created", "ticket.created"]
    assert {e["tenant_id"] for e in received} == {seeded.tenant_id}
    with system_tx(clean_db) as conn:
        outbox_ids = {r[0] for r in conn.execute(text("SELECT id FROM outbox"))}
    assert {e["id"] for e in received} == outbox_ids
    wait_until(
        lambda: count(clean_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0,
        5,
        "outbox marked published",
    )
    assert sweep(deps).outbox_requeued == 0


class _InstantWorker:
    """Stands in for process_inbox.send: a worker so fast it runs the message as it is sent."""

    def send(self, inbox_ids: list[int]) -> None:
        process_inbox(inbox_ids)


def test_a_worker_handed_a_swept_batch_at_once_can_claim_it(
    engine_paused: RunningEngine, clean_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_whatsapp(clean_db)
    with system_tx(clean_db) as conn:
        for i in range(3):
            conn.execute(
                text(
                    "INSERT INTO inbox (tenant_id, channel_id, dedupe_key, body) "
                    "VALUES (:t, :c, :k, :b)"
                ),
                {
                    "t": seeded.tenant_id,
                    "c": seeded.channel_id,
                    "k": f"k{i}",
                    "b": _text_webhook(f"wamid.instant-{i}", "hi"),
                },
            )
    _backdate(clean_db, "inbox", seconds=SWEEP_AFTER_S + 60)
    monkeypatch.setattr(maintenance, "process_inbox", _InstantWorker())
    assert sweep(worker_deps.current()).inbox_requeued == 3
    # Had the sweep still held the rows when the worker got the message, the worker would
    # have skipped them and they would wait for the next deadline.
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'processed'") == 3
    assert count(clean_db, "SELECT count(*) FROM messages") == 3


# scheduler leadership -------------------------------------------------------------------


def test_one_scheduler_leads_and_the_other_takes_over_when_it_stops(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> None:
    with (
        scheduler_thread(database_url, redis_url, queue_prefix) as a,
        scheduler_thread(database_url, redis_url, queue_prefix) as b,
    ):
        wait_until(lambda: a.is_leader or b.is_leader, 5, "a leader")
        for _ in range(5):  # a few poll intervals: still exactly one leader
            assert a.is_leader != b.is_leader
            time.sleep(0.1)
        leader, follower = (a, b) if a.is_leader else (b, a)
        leader.stop()
        wait_until(lambda: not leader.is_leader, 2, "the leader to step down")
        wait_until(lambda: follower.is_leader, 2, "the follower to take over")
        assert not leader.is_leader
    dramatiq.get_broker().close()


def test_a_failing_catch_up_sweep_leaves_the_scheduler_leading(
    clean_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def broker_down(_: object) -> None:
        calls.append("sweep")
        raise dramatiq.errors.ConnectionClosed(OSError("broker restarting"))

    monkeypatch.setattr(scheduler_module, "sweep", broker_down)
    with scheduler_thread(database_url, redis_url, queue_prefix) as scheduler:
        wait_until(lambda: scheduler.is_leader, 5, "a leader")
        time.sleep(0.3)  # a few poll intervals after the failed catch-up
        assert scheduler.is_leader
    assert calls == ["sweep"]
    dramatiq.get_broker().close()
