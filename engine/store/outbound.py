"""Outbound messages: recorded pending, claimed for a send, acknowledged or failed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from engine.events import ChannelType, Frozen, MessageType, Template
from engine.store.send_batch import (
    SEND_ABANDONED,
    SEND_LEASE_S,
    SEND_UNTRIED,
    SendJob,
    claim_sends,
)

# SendJob and the lease moved to send_batch with the batched claim; importable here as before.
__all__ = [
    "SEND_LEASE_S",
    "NewOutboundMessage",
    "SendJob",
    "TicketTarget",
    "claim_for_send",
    "get_ticket_target",
    "get_unsent_ids",
    "insert_outbound_message",
    "mark_send_failed",
    "mark_sent",
    "move_recipient",
]


class NewOutboundMessage(Frozen):
    tenant_id: int
    ticket_id: int
    type: MessageType
    body: str | None
    media_url: str | None
    filename: str | None
    quoted_message_id: int | None
    template: Template | None
    send_type: str
    user_id: int | None
    # A scheduled message waits for the scheduler (scheduled_messages.release_due_messages).
    scheduled_at: datetime | None = None


class TicketTarget(Frozen):
    """What a reply on a ticket is addressed to."""

    ticket_id: int
    channel_id: int
    contact_id: int
    status: str


def get_ticket_target(conn: Connection, *, tenant_id: int, ticket_id: int) -> TicketTarget | None:
    row = conn.execute(
        text(
            "SELECT id, channel_id, contact_id, status FROM tickets "
            "WHERE tenant_id = :t AND id = :id"
        ),
        {"t": tenant_id, "id": ticket_id},
    ).first()
    if row is None:
        return None
    return TicketTarget(ticket_id=row[0], channel_id=row[1], contact_id=row[2], status=row[3])


def insert_outbound_message(conn: Connection, target: TicketTarget, msg: NewOutboundMessage) -> int:
    """Record the message `pending` before any provider call, and count it on the ticket.

    A quoted message must belong to the same ticket; otherwise the quote is dropped. A
    scheduled message counts on the ticket only when the scheduler releases it.
    """
    message_id = conn.execute(
        text(
            """
            INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, type,
                body, media, media_url, quoted_message_id, quoted_provider_message_id, template,
                status, status_at, send_type, user_id, scheduled_at)
            SELECT :t, :ticket, :contact, :channel, 'out', :type, :body,
                CASE WHEN CAST(:media_url AS text) IS NULL THEN '[]'::jsonb
                     ELSE jsonb_build_array(jsonb_build_object(
                        'type', CAST(:type AS text), 'url', CAST(:media_url AS text),
                        'filename', CAST(:filename AS text), 'caption', CAST(:body AS text)))
                END,
                :media_url, q.id, q.provider_message_id, CAST(:template AS jsonb),
                'pending', now(), :send_type, :user_id, :scheduled_at
            FROM (SELECT 1) one
            LEFT JOIN messages q ON q.id = :quoted AND q.ticket_id = :ticket
            RETURNING id
            """
        ),
        {
            "t": msg.tenant_id,
            "ticket": target.ticket_id,
            "contact": target.contact_id,
            "channel": target.channel_id,
            "type": msg.type.value,
            "body": msg.body,
            "media_url": msg.media_url,
            "filename": msg.filename,
            "quoted": msg.quoted_message_id,
            "template": None if msg.template is None else msg.template.model_dump_json(),
            "send_type": msg.send_type,
            "user_id": msg.user_id,
            "scheduled_at": msg.scheduled_at,
        },
    ).scalar_one()
    if msg.scheduled_at is not None:
        return int(message_id)
    # A bot's or auto-reply's message is not a person answering: it must not stop the
    # first-response clock (SLA, statistics) nor mark the customer's messages dealt with.
    answered = msg.send_type != "bot"
    conn.execute(
        text(
            """
            UPDATE tickets SET last_message_at = now(), updated_at = now(),
                answered = CASE WHEN :answered THEN true ELSE answered END,
                unread_count = CASE WHEN :answered THEN 0 ELSE unread_count END,
                first_response_at = CASE WHEN :answered THEN coalesce(first_response_at, now())
                                         ELSE first_response_at END
            WHERE id = :id
            """
        ),
        {"id": target.ticket_id, "answered": answered},
    )
    return int(message_id)


def claim_for_send(conn: Connection, message_id: int) -> SendJob | None:
    """Count a send attempt on a still-unsent message and load what the send needs.

    None when the message was sent, failed, never existed or is still waiting for its
    scheduled time: a redelivered or premature send is a no-op. The one-message form of
    claim_sends (same lease rule). System scope (a worker serves every tenant).
    """
    claimed = claim_sends(conn, [message_id])
    return claimed[0] if claimed else None


def mark_sent(conn: Connection, *, message_id: int, provider_message_id: str) -> str:
    """Store the provider's id and `sent`, then apply statuses that arrived before the ack.

    Returns the message's status afterwards (a fast `delivered` may already be waiting).
    """
    conn.execute(
        text(
            """
            UPDATE messages SET provider_message_id = :p, sending_at = NULL,
                status = CASE WHEN status = 'pending' THEN 'sent' ELSE status END,
                status_at = now()
            WHERE id = :id
            """
        ),
        {"id": message_id, "p": provider_message_id},
    )
    conn.execute(
        text(
            """
            INSERT INTO message_status_events (tenant_id, channel_id, provider_message_id,
                message_id, status, provider_timestamp)
            SELECT tenant_id, channel_id, provider_message_id, id, 'sent', now()
            FROM messages WHERE id = :id
            ON CONFLICT (channel_id, provider_message_id, status) DO NOTHING
            """
        ),
        {"id": message_id},
    )
    row = conn.execute(
        text(
            """
            WITH early AS (
                UPDATE message_status_events SET message_id = :id
                WHERE channel_id = (SELECT channel_id FROM messages WHERE id = :id)
                  AND provider_message_id = :p
                RETURNING status, error_code, error_message, provider_timestamp),
            best AS (
                SELECT * FROM early ORDER BY array_position(
                    ARRAY['pending','sent','delivered','read','failed'], status) DESC LIMIT 1)
            UPDATE messages m SET status = best.status, status_at = best.provider_timestamp,
                error_code = coalesce(best.error_code, m.error_code),
                error_message = coalesce(best.error_message, m.error_message)
            FROM best
            WHERE m.id = :id AND array_position(
                ARRAY['pending','sent','delivered','read','failed'], m.status)
                < array_position(ARRAY['pending','sent','delivered','read','failed'], best.status)
            RETURNING m.status
            """
        ),
        {"id": message_id, "p": provider_message_id},
    ).first()
    return "sent" if row is None else str(row[0])


def mark_send_failed(conn: Connection, *, message_id: int, code: str | None, reason: str) -> None:
    """A send that will not happen: `failed`, with the provider's code and text kept."""
    conn.execute(
        text(
            """
            UPDATE messages SET status = 'failed', status_at = now(), sending_at = NULL,
                error_code = :code, error_message = :reason
            WHERE id = :id AND status = 'pending'
            """
        ),
        {"id": message_id, "code": code, "reason": reason[:1000]},
    )


def move_recipient(
    conn: Connection, *, contact_id: int, channel_type: ChannelType, old: str, new: str
) -> None:
    """The provider moved the chat (Telegram group → supergroup): address the new id."""
    conn.execute(
        text(
            "UPDATE contact_identities SET external_id = :new, updated_at = now() "
            "WHERE contact_id = :c AND channel_type = :ct AND external_id = :old"
        ),
        {"new": new, "c": contact_id, "ct": channel_type.value, "old": old},
    )


def get_unsent_ids(
    conn: Connection, *, older_than_s: int, retry_lost_after_s: int, limit: int
) -> list[int]:
    """Pending sends nothing will finish: never picked up for `older_than_s`, or abandoned
    (SEND_ABANDONED). Campaign ones aside: the campaign's reconcile re-offers those with its
    own policy. System scope.

    A send waiting for its backoff is not one of them until `retry_lost_after_s` (longer
    than any backoff) has passed since it was handed back, so a sweep does not hurry it.
    Scheduled messages wait for the scheduler; once released, their age counts from the
    release (status_at), not from when they were written.
    """
    rows = conn.execute(
        text(
            f"""
            SELECT m.id FROM messages m
            WHERE m.direction = 'out' AND m.status = 'pending' AND m.scheduled_at IS NULL
              AND m.send_type IS DISTINCT FROM 'campaign'
              AND (({SEND_UNTRIED}
                    AND coalesce(m.status_at, m.created_at) < now() - make_interval(secs => :age))
                   OR {SEND_ABANDONED})
            ORDER BY m.id LIMIT :limit
            """  # noqa: S608 - the fragments are constants; values are bound
        ),
        {
            "age": older_than_s,
            "lease_s": SEND_LEASE_S,
            "retry_lost_s": retry_lost_after_s,
            "limit": limit,
        },
    ).all()
    return [int(r[0]) for r in rows]
