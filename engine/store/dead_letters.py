"""Dead letters: work that failed for good, kept whole so an operator can inspect and requeue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from engine.events import Frozen


class NewDeadLetter(Frozen):
    tenant_id: int | None
    actor: str
    queue: str
    message_id: str | None
    payload_json: str
    error_class: str
    error_message: str
    traceback: str | None
    attempts: int


class DeadLetter(Frozen):
    id: int
    tenant_id: int | None
    actor: str
    queue: str
    message_id: str | None
    payload_json: str
    error_class: str
    error_message: str
    traceback: str | None
    attempts: int
    created_at: datetime
    requeued_at: datetime | None
    requeue_count: int


class DeadLetterFilter(Frozen):
    """Which dead letters an operator means. Empty matches every live (not requeued) one.

    The API, the console and the CLI all select through this one model.
    """

    ids: tuple[int, ...] = ()
    queue: str | None = None
    actor: str | None = None
    error_class: str | None = None
    tenant_id: int | None = None
    older_than: timedelta | None = None
    newer_than: timedelta | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_requeued: bool = False

    @property
    def is_empty(self) -> bool:
        """True when nothing narrows the selection: acting on it means every dead letter."""
        return not (
            self.ids
            or self.queue
            or self.actor
            or self.error_class
            or self.tenant_id is not None
            or self.older_than is not None
            or self.newer_than is not None
            or self.since is not None
            or self.until is not None
        )


_COLUMNS = (
    "id, tenant_id, actor, queue, message_id, payload::text, error_class, error_message, "
    "traceback, attempts, created_at, requeued_at, requeue_count"
)


def _where(f: DeadLetterFilter) -> tuple[str, dict[str, object]]:
    clauses = ["true"]
    params: dict[str, object] = {}
    if f.ids:
        clauses.append("id = ANY(:ids)")
        params["ids"] = list(f.ids)
    if f.queue:
        clauses.append("queue = :queue")
        params["queue"] = f.queue
    if f.actor:
        clauses.append("actor = :actor")
        params["actor"] = f.actor
    if f.error_class:
        clauses.append("error_class = :error_class")
        params["error_class"] = f.error_class
    if f.tenant_id is not None:
        clauses.append("tenant_id = :tenant_id")
        params["tenant_id"] = f.tenant_id
    if f.older_than is not None:
        clauses.append("created_at < now() - :older_than")
        params["older_than"] = f.older_than
    if f.newer_than is not None:
        clauses.append("created_at >= now() - :newer_than")
        params["newer_than"] = f.newer_than
    if f.since is not None:
        clauses.append("created_at >= :since")
        params["since"] = f.since
    if f.until is not None:
        clauses.append("created_at < :until")
        params["until"] = f.until
    if not f.include_requeued:
        clauses.append("requeued_at IS NULL")
    return " AND ".join(clauses), params


def _row(r: Sequence[object]) -> DeadLetter:
    keys = DeadLetter.model_fields.keys()
    return DeadLetter.model_validate(dict(zip(keys, r, strict=True)))


_INSERT = """
    INSERT INTO dead_letters (tenant_id, actor, queue, message_id, payload,
        error_class, error_message, traceback, attempts)
    VALUES (:tenant_id, :actor, :queue, :message_id, CAST(:payload_json AS jsonb),
        :error_class, :error_message, :traceback, :attempts)
"""
INSERT_DEAD_LETTER = text(_INSERT + " RETURNING id")
INSERT_DEAD_LETTERS = text(_INSERT)


def insert_dead_letter(conn: Connection, dl: NewDeadLetter) -> int:
    return int(conn.execute(INSERT_DEAD_LETTER, dl.model_dump()).scalar_one())


def insert_dead_letters(conn: Connection, dls: Sequence[NewDeadLetter]) -> None:
    """Several at once, in the caller's transaction (a batch's failed sends)."""
    if dls:
        conn.execute(INSERT_DEAD_LETTERS, [dl.model_dump() for dl in dls])


def list_dead_letters(
    conn: Connection, f: DeadLetterFilter, *, limit: int = 100, before_id: int | None = None
) -> list[DeadLetter]:
    """Newest first; `before_id` continues a page (keyset pagination on id)."""
    where, params = _where(f)
    if before_id is not None:
        where += " AND id < :before_id"
        params["before_id"] = before_id
    rows = conn.execute(
        text(f"SELECT {_COLUMNS} FROM dead_letters WHERE {where} ORDER BY id DESC LIMIT :limit"),  # noqa: S608
        {**params, "limit": limit},
    ).all()
    return [_row(r) for r in rows]


def count_live_dead_letters(conn: Connection) -> list[tuple[str, int | None, int]]:
    """(queue, tenant_id, count) of dead letters not requeued: what an operator must act on."""
    rows = conn.execute(
        text(
            "SELECT queue, tenant_id, count(*) FROM dead_letters WHERE requeued_at IS NULL "
            "GROUP BY queue, tenant_id ORDER BY queue, tenant_id NULLS FIRST"
        )
    ).all()
    return [(str(q), None if t is None else int(t), int(n)) for q, t, n in rows]


def get_dead_letter(conn: Connection, dead_letter_id: int) -> DeadLetter | None:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM dead_letters WHERE id = :id"),  # noqa: S608
        {"id": dead_letter_id},
    ).first()
    return None if row is None else _row(row)


def claim_for_requeue(conn: Connection, f: DeadLetterFilter, *, limit: int) -> list[DeadLetter]:
    """Mark matching live dead letters requeued and return them, locked, in one statement.

    The caller enqueues them before committing: a crash in between rolls the mark back, so a
    requeue is never lost (at worst a message is enqueued twice, which stages tolerate).
    """
    where, params = _where(f.model_copy(update={"include_requeued": False}))
    rows = conn.execute(
        text(
            f"""
            UPDATE dead_letters SET requeued_at = now(), requeue_count = requeue_count + 1
            WHERE id IN (SELECT id FROM dead_letters WHERE {where}
                         ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
            RETURNING {_COLUMNS}
            """  # noqa: S608 - clauses are constants, values are bound
        ),
        {**params, "limit": limit},
    ).all()
    return sorted((_row(r) for r in rows), key=lambda d: d.id)


def purge_dead_letters(conn: Connection, f: DeadLetterFilter) -> int:
    where, params = _where(f.model_copy(update={"include_requeued": True}) if f.ids else f)
    result = conn.execute(text(f"DELETE FROM dead_letters WHERE {where}"), params)  # noqa: S608
    return int(result.rowcount)


def payload_of(dl: DeadLetter) -> dict[str, object]:
    """The stored broker message as a dict (the shape dramatiq's Message.asdict() gives)."""
    value = json.loads(dl.payload_json)
    assert isinstance(value, dict)
    return value


# Where each actor's first argument lives, so a dead letter can name its tenant even when
# the broker message did not carry it.
_TENANT_OF_FIRST_ARG = {
    "send_message": "SELECT tenant_id FROM messages WHERE id = :id",
    "download_media": "SELECT tenant_id FROM messages WHERE id = :id",
    "deliver_webhook": "SELECT tenant_id FROM webhook_deliveries WHERE id = :id",
}


# The same for actors whose first argument is a batch of ids: a tenant when they share one.
_TENANT_OF_BATCH = {
    "process_inbox": "SELECT DISTINCT tenant_id FROM inbox WHERE id = ANY(:ids)",
    "send_messages": "SELECT DISTINCT tenant_id FROM messages WHERE id = ANY(:ids)",
}


def infer_tenant(conn: Connection, actor: str, payload_json: str) -> int | None:
    """The tenant a failed message was working for, when one can be told (system scope)."""
    args = json.loads(payload_json).get("args") or []
    if not args:
        return None
    first = args[0]
    batch_sql = _TENANT_OF_BATCH.get(actor)
    if batch_sql is not None and isinstance(first, list) and first:
        rows = conn.execute(text(batch_sql), {"ids": first}).all()
        return int(rows[0][0]) if len(rows) == 1 else None
    sql = _TENANT_OF_FIRST_ARG.get(actor)
    if sql is None or not isinstance(first, int):
        return None
    row = conn.execute(text(sql), {"id": first}).first()
    return None if row is None else int(row[0])
