"""Requeue is atomic with the dead-letter row: a crash at any step loses nothing, and two
operators requeueing at once send each message once."""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import Connection, Engine, text

import actors.dead_letters as requeueing
from actors.dead_letters import requeue
from engine.db import system_tx
from engine.ops.dead_letters import PAGE_MAX, dead_letter_page
from engine.store.dead_letters import DeadLetterFilter
from tests.conftest import count
from tests.support.harness import seed_whatsapp
from tests.support.ops import QUEUE, add_dead_letter

LIVE = "SELECT count(*) FROM dead_letters WHERE requeued_at IS NULL"


class Crash(Exception):
    """The process dies here."""


def _queued(redis_url: str, prefix: str) -> int:
    return len(_queued_calls(redis_url, prefix, QUEUE))


def test_enqueue_failing_after_the_row_is_locked_leaves_it_dead_and_sends_nothing(
    clean_db: Engine,
    broker: dramatiq.Broker,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dl_id = add_dead_letter(clean_db)

    def broker_down(message: Any, *, delay: int | None = None) -> Any:
        raise Crash("broker connection lost mid-requeue")

    monkeypatch.setattr(broker, "enqueue", broker_down)
    with pytest.raises(Crash):
        requeue(clean_db, broker, DeadLetterFilter(ids=(dl_id,)))
    assert count(clean_db, LIVE) == 1  # still dead, still requeueable
    assert _queued(redis_url, queue_prefix) == 0

    monkeypatch.undo()
    assert [d.id for d in requeue(clean_db, broker, DeadLetterFilter(ids=(dl_id,)))] == [dl_id]
    assert count(clean_db, LIVE) == 0
    assert _queued(redis_url, queue_prefix) == 1


def test_crash_after_enqueue_before_commit_keeps_the_row_dead_never_loses_the_message(
    clean_db: Engine,
    broker: dramatiq.Broker,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guarantee is at-least-once: the message is on the broker and the row still says
    dead, so an operator can requeue again (the stages are idempotent, a copy is harmless)."""
    dl_id = add_dead_letter(clean_db)
    real_chunk = requeueing.requeue_chunk

    def enqueue_then_die(conn: Connection, b: dramatiq.Broker, f: Any) -> requeueing.Requeued:
        real_chunk(conn, b, f)
        raise Crash("killed before commit")

    monkeypatch.setattr(requeueing, "requeue_chunk", enqueue_then_die)
    with pytest.raises(Crash):
        requeue(clean_db, broker, DeadLetterFilter())
    assert count(clean_db, LIVE) == 1
    assert _queued(redis_url, queue_prefix) == 1

    monkeypatch.undo()
    assert [d.id for d in requeue(clean_db, broker, DeadLetterFilter())] == [dl_id]
    assert count(clean_db, LIVE) == 0


def test_two_requeues_at_once_send_each_dead_letter_once(
    clean_db: Engine, broker: dramatiq.Broker, redis_url: str, queue_prefix: str
) -> None:
    ids = [add_dead_letter(clean_db) for _ in range(3)]
    with system_tx(clean_db) as first:
        claimed = requeueing.requeue_chunk(first, broker, DeadLetterFilter(ids=(ids[0], ids[1])))
        # While the first operator's transaction holds two rows, a second requeues everything.
        second = requeue(clean_db, broker, DeadLetterFilter())
    assert [d.id for d in claimed.dead_letters] == ids[:2]
    assert [d.id for d in second] == [ids[2]]
    assert _queued(redis_url, queue_prefix) == 3
    assert count(clean_db, LIVE) == 0
    assert requeue(clean_db, broker, DeadLetterFilter()) == []


def test_requeue_by_id_takes_every_id_given_past_one_chunk(
    clean_db: Engine, broker: dramatiq.Broker, redis_url: str, queue_prefix: str
) -> None:
    ids = tuple(add_dead_letter(clean_db) for _ in range(requeueing.REQUEUE_CHUNK + 3))

    done = requeue(clean_db, broker, DeadLetterFilter(ids=ids))

    assert sorted(d.id for d in done) == sorted(ids)
    assert count(clean_db, LIVE) == 0
    assert _queued(redis_url, queue_prefix) == len(ids)


def _queued_calls(redis_url: str, prefix: str, queue: str) -> list[tuple[str, list[Any]]]:
    client = redis.Redis.from_url(redis_url)
    messages = (dramatiq.Message.decode(raw) for raw in client.hvals(f"{prefix}:{queue}.msgs"))
    return [(m.actor_name, list(m.args)) for m in messages]


def test_requeueing_a_failed_send_puts_its_message_back_to_pending_and_announces_it(
    clean_db: Engine,
    broker: dramatiq.Broker,
    redis_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant_id = seed_whatsapp(clean_db).tenant_id
    with system_tx(clean_db) as conn:
        message_id = conn.execute(
            text(
                """
                WITH c AS (INSERT INTO contacts (tenant_id, name) VALUES (:t, 'Ana') RETURNING id),
                t AS (INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol)
                      SELECT :t, ch.id, c.id, 'open', 'R-requeue' FROM c, channels ch
                      WHERE ch.tenant_id = :t RETURNING id, channel_id, contact_id)
                INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction,
                    type, body, status, send_type, send_attempts, error_message)
                SELECT :t, t.id, t.contact_id, t.channel_id, 'out', 'text', 'hello', 'failed',
                       'chat', 6, 'provider unavailable' FROM t
                RETURNING id
                """
            ),
            {"t": tenant_id},
        ).scalar_one()
    dl_id = add_dead_letter(
        clean_db, queue="outbound", actor_name="send_message", tenant_id=tenant_id
    )
    with system_tx(clean_db) as conn:  # the dead letter carries the message's id
        conn.execute(
            text(
                "UPDATE dead_letters SET payload = jsonb_set(payload,"
                " '{args}', jsonb_build_array(CAST(:m AS bigint))) WHERE id = :id"
            ),
            {"m": message_id, "id": dl_id},
        )

    # What a worker would see when the send reaches the broker: the committed status.
    seen_at_enqueue: list[str] = []
    enqueue = broker.enqueue

    def watching(message: Any, *, delay: int | None = None) -> Any:
        if message.actor_name == "send_message":
            with system_tx(clean_db) as other:
                seen_at_enqueue.append(
                    other.execute(
                        text("SELECT status FROM messages WHERE id = :id"), {"id": message_id}
                    ).scalar_one()
                )
        return enqueue(message, delay=delay)

    monkeypatch.setattr(broker, "enqueue", watching)
    requeue(clean_db, broker, DeadLetterFilter(ids=(dl_id,)))
    monkeypatch.undo()

    assert seen_at_enqueue == ["pending"]
    with system_tx(clean_db) as conn:
        state = conn.execute(
            text("SELECT status, send_attempts, error_message FROM messages WHERE id = :id"),
            {"id": message_id},
        ).one()
        announced = conn.execute(
            text("SELECT id, payload->>'status' FROM outbox WHERE payload->>'message_id' = :m"),
            {"m": str(message_id)},
        ).all()
    assert tuple(state) == ("pending", 0, None)
    assert [status for _, status in announced] == ["pending"]
    assert _queued_calls(redis_url, queue_prefix, "outbound") == [("send_message", [message_id])]
    assert _queued_calls(redis_url, queue_prefix, "deliver") == [
        ("publish_outbox", [[announced[0][0]]])
    ]


def test_a_page_asked_larger_than_the_maximum_still_says_where_to_go_on(
    clean_db: Engine,
) -> None:
    for _ in range(PAGE_MAX + 2):
        add_dead_letter(clean_db)
    with system_tx(clean_db) as conn:
        first = dead_letter_page(conn, DeadLetterFilter(), limit=PAGE_MAX * 2)
        rest = dead_letter_page(conn, DeadLetterFilter(), limit=PAGE_MAX, cursor=first.next_cursor)

    assert len(first.items) == PAGE_MAX and first.next_cursor is not None
    assert len(rest.items) == 2 and rest.next_cursor is None
