"""A ticket's messages with their delivery history, oldest first."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.tickets.views import MessagePage, MessageView

_MESSAGE_SELECT = """
    SELECT m.id, m.ticket_id, m.direction, m.type, m.body, m.media, m.location,
           m.provider_message_id, m.quoted_message_id, m.status, m.error_code, m.error_message,
           m.send_type, m.user_id, m.scheduled_at, m.provider_timestamp, m.edited_at,
           m.deleted_at, m.created_at, m.subject, m.author_name,
           coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'status', e.status, 'at', e.provider_timestamp,
                        'error_code', e.error_code, 'error_message', e.error_message)
                      ORDER BY array_position(ARRAY['sent','delivered','read','failed'],
                                              e.status), e.provider_timestamp, e.id)
                     FROM message_status_events e
                     WHERE e.message_id = m.id AND e.tenant_id = :tenant_id), '[]'::jsonb)
             AS status_history,
           (SELECT jsonb_build_object(
                       'kind', ch.kind, 'status', ch.status, 'error_code', ch.error_code,
                       'error_message', ch.error_message, 'requested_at', ch.created_at,
                       'finished_at', ch.finished_at)
              FROM message_changes ch
             WHERE ch.message_id = m.id AND ch.tenant_id = :tenant_id
             ORDER BY ch.id DESC LIMIT 1) AS last_change
    FROM messages m
    WHERE m.tenant_id = :tenant_id
"""

_LIST_MESSAGES = text(
    _MESSAGE_SELECT
    + " AND m.ticket_id = :ticket_id AND m.id > :after_id ORDER BY m.id LIMIT :limit"
)

_GET_MESSAGE = text(_MESSAGE_SELECT + " AND m.id = :message_id")

_MESSAGE_TICKET = text(
    "SELECT m.ticket_id FROM messages m WHERE m.tenant_id = :tenant_id AND m.id = :message_id"
)


async def list_messages(
    conn: AsyncConnection, tenant_id: int, ticket_id: int, *, limit: int, after_id: int | None
) -> MessagePage:
    """Up to `limit` messages of a ticket with id > `after_id`, oldest first. Read-only.

    An unknown ticket yields an empty page; callers wanting a 404 check `get_ticket` first.
    """
    params = {
        "tenant_id": tenant_id,
        "ticket_id": ticket_id,
        "after_id": after_id or 0,
        "limit": limit + 1,
    }
    rows = (await conn.execute(_LIST_MESSAGES, params)).mappings().all()
    items = tuple(MessageView.model_validate(dict(row)) for row in rows[:limit])
    next_after_id = items[-1].id if len(rows) > limit else None
    return MessagePage(items=items, next_after_id=next_after_id)


async def get_message(conn: AsyncConnection, tenant_id: int, message_id: int) -> MessageView | None:
    """One of the tenant's messages with its delivery history, or None. Read-only."""
    params = {"tenant_id": tenant_id, "message_id": message_id}
    row = (await conn.execute(_GET_MESSAGE, params)).mappings().one_or_none()
    return None if row is None else MessageView.model_validate(dict(row))


async def get_message_ticket_id(
    conn: AsyncConnection, tenant_id: int, message_id: int
) -> int | None:
    """The ticket a message of this tenant belongs to, or None. Read-only."""
    params = {"tenant_id": tenant_id, "message_id": message_id}
    value = (await conn.execute(_MESSAGE_TICKET, params)).scalar_one_or_none()
    return None if value is None else int(value)
