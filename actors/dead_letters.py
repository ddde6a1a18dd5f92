"""Requeueing dead letters: back onto the broker, atomically with the dead-letter row."""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
from sqlalchemy import Connection, Engine

from engine.db import system_tx
from engine.store.dead_letters import DeadLetter, DeadLetterFilter, claim_for_requeue, payload_of

REQUEUE_CHUNK = 500


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
        done.extend(chunk)
        if len(chunk) < REQUEUE_CHUNK:
            return done


def requeue_chunk(
    conn: Connection, broker: dramatiq.Broker, f: DeadLetterFilter, *, limit: int = REQUEUE_CHUNK
) -> list[DeadLetter]:
    """Claim up to `limit` live dead letters in the caller's transaction and enqueue each.

    The caller commits after this returns; an exception here must roll the claim back.
    """
    chunk = claim_for_requeue(conn, f, limit=limit)
    for dl in chunk:
        broker.enqueue(_message(dl))
    return chunk


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
