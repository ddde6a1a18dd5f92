"""The outbox: side effects recorded in the pipeline transaction, performed after commit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, text

from engine.events import Frozen


class OutboxEvent(Frozen):
    id: int
    tenant_id: int
    topic: str
    payload_json: str
    created_at: datetime


def insert_outbox(
    conn: Connection, *, tenant_id: int, topic: str, payload: dict[str, object]
) -> int:
    """Record an event to publish once the surrounding transaction commits."""
    return int(
        conn.execute(
            text(
                "INSERT INTO outbox (tenant_id, topic, payload) "
                "VALUES (:t, :topic, CAST(:p AS jsonb)) RETURNING id"
            ),
            {"t": tenant_id, "topic": topic, "p": json.dumps(payload, default=str)},
        ).scalar_one()
    )


def claim_outbox(conn: Connection, ids: Sequence[int]) -> list[OutboxEvent]:
    """Lock unpublished events among `ids` (system scope), oldest first."""
    rows = conn.execute(
        text(
            "SELECT id, tenant_id, topic, payload::text, created_at FROM outbox "
            "WHERE id = ANY(:ids) AND published_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED"
        ),
        {"ids": list(ids)},
    ).all()
    return [
        OutboxEvent(id=r[0], tenant_id=r[1], topic=r[2], payload_json=r[3], created_at=r[4])
        for r in rows
    ]


def mark_outbox_published(conn: Connection, ids: Sequence[int]) -> None:
    conn.execute(
        text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)"), {"ids": list(ids)}
    )


def get_stale_outbox_ids(conn: Connection, *, older_than_s: int, limit: int) -> list[int]:
    """Events whose publish message was lost (system scope)."""
    rows = conn.execute(
        text(
            "SELECT id FROM outbox WHERE published_at IS NULL "
            "AND created_at < now() - make_interval(secs => :age) ORDER BY id LIMIT :limit"
        ),
        {"age": older_than_s, "limit": limit},
    ).all()
    return [r[0] for r in rows]
