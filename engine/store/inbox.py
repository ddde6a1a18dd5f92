"""The inbox: raw webhooks committed before the provider is answered, claimed by workers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, text

from engine.events import ChannelType, Frozen


class InboxWrite(Frozen):
    """One raw webhook body bound for one channel."""

    tenant_id: int
    channel_id: int
    dedupe_key: str
    body: bytes
    content_type: str = "application/json"
    correlation_id: str | None = None  # follows the event into logs, from webhook to delivery


class InboxRow(Frozen):
    """A claimed inbox row with what the pipeline needs to parse it."""

    id: int
    tenant_id: int
    channel_id: int
    channel_type: ChannelType
    address_id: str
    body: bytes
    content_type: str = "application/json"
    received_at: datetime
    attempts: int
    correlation_id: str | None = None


# psycopg's own syntax, run on the web's inbox connections (engine/db.connect_inbox_writer):
# `%(name)b` sends each array in binary, which spares quoting every body as text (most of the
# statement's client-side cost). One statement stores a whole group commit.
INSERT_INBOX_SQL = """
    INSERT INTO inbox (tenant_id, channel_id, dedupe_key, body, content_type, enqueued_at,
                       correlation_id)
    SELECT * FROM unnest(%(tenant_ids)b::bigint[], %(channel_ids)b::bigint[],
                         %(keys)b::text[], %(bodies)b::bytea[], %(types)b::text[],
                         %(enqueued)b::timestamptz[], %(correlation_ids)b::text[])
    ON CONFLICT (channel_id, dedupe_key) DO NOTHING
    RETURNING id, channel_id, dedupe_key
"""


def insert_inbox_params(writes: Sequence[InboxWrite], now: datetime) -> dict[str, object]:
    """Bind parameters for INSERT_INBOX_SQL."""
    return {
        "tenant_ids": [w.tenant_id for w in writes],
        "channel_ids": [w.channel_id for w in writes],
        "keys": [w.dedupe_key for w in writes],
        "bodies": [w.body for w in writes],
        "types": [w.content_type for w in writes],
        "enqueued": [now] * len(writes),
        "correlation_ids": [w.correlation_id for w in writes],
    }


def claim_inbox(
    conn: Connection, inbox_ids: Sequence[int], *, reparse: bool = False
) -> list[InboxRow]:
    """Lock the still-unprocessed rows among `inbox_ids` for this transaction.

    Rows another worker holds are skipped (it will finish them, or the sweeper will re-offer
    them); rows already processed are skipped, which makes redelivered batches no-ops.
    `reparse` (an operator's requeue) also re-offers rows that were partly malformed.
    Needs system scope: a batch may span tenants.
    """
    statuses = ["pending", "dead", "partial"] if reparse else ["pending", "dead"]
    rows = conn.execute(
        text(
            """
            SELECT i.id, i.tenant_id, i.channel_id, c.type, c.external_id, i.body,
                   i.content_type, i.received_at, i.attempts, i.correlation_id
            FROM inbox i JOIN channels c ON c.id = i.channel_id
            WHERE i.id = ANY(:ids) AND i.status = ANY(:statuses)
            ORDER BY i.id
            FOR UPDATE OF i SKIP LOCKED
            """
        ),
        {"ids": list(inbox_ids), "statuses": statuses},
    ).all()
    return [
        InboxRow(
            id=r[0],
            tenant_id=r[1],
            channel_id=r[2],
            channel_type=ChannelType(r[3]),
            address_id=r[4],
            body=bytes(r[5]),
            content_type=r[6],
            received_at=r[7],
            attempts=r[8],
            correlation_id=r[9],
        )
        for r in rows
    ]


def mark_inbox_done(conn: Connection, inbox_id: int, *, status: str, note: str | None) -> None:
    """Record the outcome of one inbox row (processed / partial / ignored / dead)."""
    conn.execute(
        text(
            "UPDATE inbox SET status = :status, note = :note, processed_at = now(), "
            "attempts = attempts + 1 WHERE id = :id"
        ),
        {"id": inbox_id, "status": status, "note": note},
    )


_MARK_DONE_MANY = text(
    """
    UPDATE inbox SET status = d.status, note = d.note, processed_at = now(),
        attempts = inbox.attempts + 1
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:notes AS text[]))
        AS d(id, status, note)
    WHERE inbox.id = d.id
    """
)


def mark_inbox_done_many(conn: Connection, outcomes: Sequence[tuple[int, str, str | None]]) -> None:
    """Record the outcome of many inbox rows (id, status, note) in one round trip."""
    if outcomes:
        conn.execute(
            _MARK_DONE_MANY,
            {
                "ids": [o[0] for o in outcomes],
                "statuses": [o[1] for o in outcomes],
                "notes": [o[2] for o in outcomes],
            },
        )


def mark_inbox_dead(conn: Connection, inbox_ids: Sequence[int], *, note: str) -> None:
    """Park rows whose processing cannot succeed; a dead-letter requeue revives them."""
    conn.execute(
        text(
            "UPDATE inbox SET status = 'dead', note = :note, attempts = attempts + 1 "
            "WHERE id = ANY(:ids) AND status = 'pending'"
        ),
        {"ids": list(inbox_ids), "note": note[:500]},
    )


def get_stale_inbox_ids(conn: Connection, *, older_than_s: int, limit: int) -> list[int]:
    """Pending rows nobody finished within the deadline (lost broker message, crashed worker).

    Marks them re-offered now so that the next sweep waits another deadline. System scope.
    """
    rows = conn.execute(
        text(
            """
            UPDATE inbox SET enqueued_at = now()
            WHERE id IN (
                SELECT id FROM inbox
                WHERE status = 'pending'
                  AND coalesce(enqueued_at, received_at) < now() - make_interval(secs => :age)
                ORDER BY received_at
                LIMIT :limit
                FOR UPDATE SKIP LOCKED)
            RETURNING id
            """
        ),
        {"age": older_than_s, "limit": limit},
    ).all()
    return sorted(r[0] for r in rows)


# Served by inbox_pending_idx (a partial index), so the web's backlog check stays cheap.
# Plain SQL, run on the web's inbox connections (api/ingest.py).
COUNT_PENDING_INBOX = "SELECT count(*) FROM inbox WHERE status = 'pending'"
