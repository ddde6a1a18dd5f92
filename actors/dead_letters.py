"""Requeueing dead letters: back onto the broker, atomically with the dead-letter row."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

import dramatiq
from sqlalchemy import Connection, Engine

from actors.deliver import publish_outbox
from actors.outbound import send_message
from engine.db import system_tx
from engine.store.dead_letters import DeadLetter, DeadLetterFilter, claim_for_requeue, payload_of
from engine.store.send_batch import reopen_failed_sends

REQUEUE_CHUNK = 500


class Requeued(NamedTuple):
    dead_letters: list[DeadLetter]
    # For after the commit: sends whose message the requeue put back to pending (enqueued
    # before, a worker could find it still failed), and the events announcing them.
    sends: list[dramatiq.Message[object]]
    outbox_ids: list[int]


def requeue(db: Engine, broker: dramatiq.Broker, f: DeadLetterFilter) -> list[DeadLetter]:
    """Requeue every live dead letter matching `f`; return those requeued.

    Each chunk is marked and enqueued inside one transaction: if enqueueing fails the marks
    roll back, so nothing is lost; a crash after enqueue but before commit can enqueue a
    message twice, which the idempotent stages absorb.
    """
    done: list[DeadLetter] = []
    while True:
        with system_tx(db) as conn:
            chunk = requeue_chunk(conn, broker, f)
        after_commit(broker, chunk)
        done.extend(chunk.dead_letters)
        if len(chunk.dead_letters) < REQUEUE_CHUNK:
            return done


def requeue_chunk(
    conn: Connection, broker: dramatiq.Broker, f: DeadLetterFilter, *, limit: int = REQUEUE_CHUNK
) -> Requeued:
    """Claim up to `limit` live dead letters in the caller's transaction and enqueue each.

    A failed send's message goes back to pending (its send would otherwise find it failed
    and do nothing); that send is enqueued by `after_commit`, once the message reads
    pending. If the process dies in between, the sweeper offers the pending message. The
    caller commits after this returns; an exception here must roll the claim back.
    """
    chunk = claim_for_requeue(conn, f, limit=limit)
    sends = [dl for dl in chunk if dl.actor == send_message.actor_name]
    outbox_ids = reopen_failed_sends(conn, [m for m in map(_send_of, sends) if m is not None])
    for dl in chunk:
        if dl.actor != send_message.actor_name:
            broker.enqueue(_message(dl))
    return Requeued(chunk, [_message(dl) for dl in sends], outbox_ids)


def after_commit(broker: dramatiq.Broker, chunk: Requeued) -> None:
    """Enqueue the requeued sends and announce what the committed requeue changed."""
    for message in chunk.sends:
        broker.enqueue(message)
    if chunk.outbox_ids:
        broker.enqueue(publish_outbox.message(chunk.outbox_ids))


def _send_of(dl: DeadLetter) -> int | None:
    """The message id a send_message dead letter carries."""
    args = payload_of(dl).get("args")
    if isinstance(args, list) and args and isinstance(args[0], int):
        return args[0]
    return None


def _message(dl: DeadLetter) -> dramatiq.Message[object]:
    payload = payload_of(dl)
    options = _mapping(payload.get("options"))
    options["requeued_from"] = dl.id
    args = payload.get("args")
    return dramatiq.Message(
        queue_name=str(payload.get("queue_name", dl.queue)),
        actor_name=str(payload.get("actor_name", dl.actor)),
        args=tuple(args) if isinstance(args, list) else (),
        kwargs=_mapping(payload.get("kwargs")),
        options=options,
        message_id=str(uuid.uuid4()),
    )


def _mapping(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}
