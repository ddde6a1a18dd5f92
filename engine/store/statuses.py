"""Delivery statuses of outbound messages, applied so that they only ever move forward."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from engine.metrics import count_delivery

# pending < sent < delivered < read; failed ends an attempt but cannot undo a read.
_RANK_SQL = "array_position(ARRAY['pending','sent','delivered','read','failed'], {col})"


def apply_status(
    conn: Connection,
    *,
    tenant_id: int,
    channel_id: int,
    provider_message_id: str,
    status: str,
    at: datetime,
    error_code: str | None,
    error_message: str | None,
) -> int | None:
    """Record a status event and advance the message if the status is newer.

    Idempotent: the event row is unique per (channel, provider id, status). A status for a
    message we have not stored yet is kept and applied when the send is acknowledged.
    Returns the message id when the message's status changed.
    """
    conn.execute(
        text(
            """
            INSERT INTO message_status_events (tenant_id, channel_id, provider_message_id,
                message_id, status, error_code, error_message, provider_timestamp)
            VALUES (:t, :c, :p,
                (SELECT id FROM messages WHERE channel_id = :c AND provider_message_id = :p),
                :s, :code, :err, :at)
            ON CONFLICT (channel_id, provider_message_id, status) DO NOTHING
            """
        ),
        {
            "t": tenant_id,
            "c": channel_id,
            "p": provider_message_id,
            "s": status,
            "code": error_code,
            "err": error_message,
            "at": at,
        },
    )
    row = conn.execute(
        text(
            f"""
            UPDATE messages SET status = :s, status_at = :at,
                error_code = coalesce(:code, error_code),
                error_message = coalesce(:err, error_message)
            WHERE channel_id = :c AND provider_message_id = :p AND direction = 'out'
              AND {_RANK_SQL.format(col="status")} < {_RANK_SQL.format(col="CAST(:s AS text)")}
              AND NOT (status = 'read' AND :s = 'failed')
            RETURNING id
            """  # noqa: S608 - the fragment is a constant, values are bound
        ),
        {
            "s": status,
            "at": at,
            "code": error_code,
            "err": error_message,
            "c": channel_id,
            "p": provider_message_id,
        },
    ).first()
    if row is not None:
        count_delivery(conn, channel_id=channel_id, status=status)
    return None if row is None else int(row[0])


def apply_watermark(
    conn: Connection,
    *,
    channel_id: int,
    contact_id: int,
    status: str,
    watermark: datetime,
    at: datetime,
) -> list[int]:
    """Advance every outbound message to `contact_id` sent up to `watermark` (Messenger's
    delivered/read receipts name a time, not messages), recording the status event of each
    so its delivery history shows the step. Returns the ids that changed."""
    rows = conn.execute(
        text(
            f"""
            WITH advanced AS (
                UPDATE messages SET status = :s, status_at = :at
                WHERE channel_id = :c AND contact_id = :contact AND direction = 'out'
                  AND created_at <= :watermark AND provider_message_id IS NOT NULL
                  AND {_RANK_SQL.format(col="status")} < {_RANK_SQL.format(col="CAST(:s AS text)")}
                  AND status <> 'failed'
                RETURNING id, tenant_id, channel_id, provider_message_id),
            recorded AS (
                INSERT INTO message_status_events (tenant_id, channel_id, provider_message_id,
                    message_id, status, provider_timestamp)
                SELECT tenant_id, channel_id, provider_message_id, id, :s, :at FROM advanced
                ON CONFLICT (channel_id, provider_message_id, status) DO NOTHING)
            SELECT id FROM advanced
            """  # noqa: S608 - the fragment is a constant, values are bound
        ),
        {"s": status, "at": at, "c": channel_id, "contact": contact_id, "watermark": watermark},
    ).all()
    return [int(r[0]) for r in rows]
