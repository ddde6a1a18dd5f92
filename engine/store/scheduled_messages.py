"""Messages waiting to go out: scheduled sends released when due, cancelled or edited before."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

from engine.errors import EngineError, NotFoundError
from engine.events import Frozen
from engine.store.outbox import insert_outbox

CANCELLED = "cancelled"  # error_code of a message cancelled before sending (no own status)


class MessageStateError(EngineError):
    """The message is past the point where this change applies (the API answers 409)."""


class PendingMessage(Frozen):
    """An outgoing message row held FOR UPDATE."""

    id: int
    ticket_id: int
    direction: str
    type: str
    status: str
    send_attempts: int
    claimed: bool
    scheduled: bool


class MessageChange(Frozen):
    message_id: int
    ticket_id: int
    outbox_ids: tuple[int, ...]


_LOCK = text(
    """
    SELECT id, ticket_id, direction, type, status, send_attempts,
           sending_at IS NOT NULL AS claimed, scheduled_at IS NOT NULL AS scheduled
    FROM messages WHERE tenant_id = :t AND id = :id FOR UPDATE
    """
)
_CANCEL = text(
    """
    UPDATE messages SET status = 'failed', status_at = now(), error_code = :code,
        error_message = 'Cancelled before it was sent.', scheduled_at = NULL
    WHERE tenant_id = :t AND id = :id
    """
)
# A media message's body is its caption, kept in two places; both change together.
_EDIT = text(
    """
    UPDATE messages SET body = :body,
        media = CASE WHEN jsonb_array_length(media) = 0 THEN media
                     ELSE jsonb_set(media, '{0,caption}', to_jsonb(CAST(:body AS text))) END
    WHERE tenant_id = :t AND id = :id
    """
)
_EVENT = text(
    """
    INSERT INTO ticket_events (tenant_id, ticket_id, type, user_id, data)
    VALUES (:t, :ticket_id, :type, :user_id, CAST(:data AS jsonb))
    """
)
# Due messages are locked with SKIP LOCKED and released (scheduled_at cleared) in the same
# statement, so two schedulers firing at once each release a disjoint set. The ticket is
# counted as answered only now, when the message actually goes out.
_RELEASE_DUE = text(
    """
    WITH due AS (
        SELECT id FROM messages
        WHERE status = 'pending' AND scheduled_at IS NOT NULL AND scheduled_at <= now()
        ORDER BY scheduled_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED),
    released AS (
        UPDATE messages m SET scheduled_at = NULL, status_at = now()
        FROM due WHERE m.id = due.id
        RETURNING m.id, m.ticket_id),
    touched AS (
        UPDATE tickets t SET answered = true, last_message_at = now(),
            first_response_at = coalesce(t.first_response_at, now()), updated_at = now()
        WHERE t.id IN (SELECT ticket_id FROM released))
    SELECT id FROM released ORDER BY id
    """
)


def _lock(conn: Connection, *, tenant_id: int, message_id: int) -> PendingMessage:
    row = conn.execute(_LOCK, {"t": tenant_id, "id": message_id}).mappings().one_or_none()
    if row is None:
        raise NotFoundError(f"no message {message_id}")
    return PendingMessage.model_validate(dict(row))


def _audit(
    conn: Connection,
    *,
    tenant_id: int,
    message: PendingMessage,
    type: str,
    user_id: int,
    topic: str,
    payload: dict[str, object],
) -> MessageChange:
    data = json.dumps({"message_id": message.id})
    conn.execute(
        _EVENT,
        {
            "t": tenant_id,
            "ticket_id": message.ticket_id,
            "type": type,
            "user_id": user_id,
            "data": data,
        },
    )
    outbox_id = insert_outbox(
        conn,
        tenant_id=tenant_id,
        topic=topic,
        payload={"message_id": message.id, "ticket_id": message.ticket_id, **payload},
    )
    return MessageChange(
        message_id=message.id, ticket_id=message.ticket_id, outbox_ids=(outbox_id,)
    )


def mark_message_cancelled(
    conn: Connection, *, tenant_id: int, message_id: int, user_id: int
) -> MessageChange:
    """Cancel an outgoing message no worker has picked up: `failed` with code "cancelled".

    A worker's claim and this cancel both lock the row, so exactly one of them wins.
    Raises NotFoundError, MessageStateError.
    """
    message = _lock(conn, tenant_id=tenant_id, message_id=message_id)
    if message.direction != "out":
        raise MessageStateError(
            f"Message {message_id} was received from the contact; only an outgoing message "
            "can be cancelled."
        )
    if message.status != "pending":
        raise MessageStateError(
            f"Message {message_id} is already {message.status}; it can no longer be cancelled."
        )
    if message.claimed or message.send_attempts > 0:
        raise MessageStateError(
            f"Message {message_id} is being sent; it can no longer be cancelled."
        )
    conn.execute(_CANCEL, {"t": tenant_id, "id": message_id, "code": CANCELLED})
    return _audit(
        conn,
        tenant_id=tenant_id,
        message=message,
        type="message_cancelled",
        user_id=user_id,
        topic="message.status",
        payload={"status": "failed", "error_code": CANCELLED},
    )


def mark_scheduled_body(
    conn: Connection, *, tenant_id: int, message_id: int, user_id: int, body: str
) -> MessageChange:
    """Replace the body (or caption) of a scheduled message that has not been released yet.

    Raises NotFoundError, MessageStateError (not scheduled any more, or a template).
    """
    message = _lock(conn, tenant_id=tenant_id, message_id=message_id)
    if message.direction != "out" or message.status != "pending" or not message.scheduled:
        raise MessageStateError(
            f"Message {message_id} is not a scheduled message waiting to be sent; only those "
            "can be edited. Editing a message the provider already has is not supported by "
            "the channel adapters yet."
        )
    if message.type == "template":
        raise MessageStateError(
            f"Message {message_id} is a template message; it has no body to edit."
        )
    conn.execute(_EDIT, {"t": tenant_id, "id": message_id, "body": body})
    return _audit(
        conn,
        tenant_id=tenant_id,
        message=message,
        type="scheduled_message_edited",
        user_id=user_id,
        topic="message.updated",
        payload={"edited": True},
    )


def release_due_messages(conn: Connection, *, limit: int) -> list[int]:
    """Release scheduled messages whose time has come: their ids, to enqueue after commit.

    System scope (the scheduler serves every tenant). A message is released once: its
    scheduled_at is cleared in the same statement, so a second or concurrent call skips it.
    """
    return [int(r[0]) for r in conn.execute(_RELEASE_DUE, {"limit": limit})]
