"""Outbound messages: recorded pending, claimed for a send, acknowledged or failed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from engine.events import ChannelType, Frozen, MessageType, Template


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
    conn.execute(
        text(
            """
            UPDATE tickets SET answered = true, unread_count = 0, last_message_at = now(),
                first_response_at = coalesce(first_response_at, now()), updated_at = now()
            WHERE id = :id
            """
        ),
        {"id": target.ticket_id},
    )
    return int(message_id)


class SendJob(Frozen):
    """A claimed outbound message and everything needed to send it."""

    message_id: int
    tenant_id: int
    ticket_id: int
    channel_id: int
    contact_id: int
    channel_type: ChannelType
    type: MessageType
    body: str | None
    media_url: str | None
    filename: str | None
    quoted_provider_message_id: str | None
    template: Template | None
    subject: str | None
    thread_ids: tuple[str, ...]
    recipient: str | None
    last_inbound_at: datetime | None
    opted_out: bool
    unreachable: bool
    attempt: int


# How long a claimed send may run before another delivery may take it over (a crashed worker).
SEND_LEASE_S = 120


def release_claim(conn: Connection, *, message_id: int, uncount: bool) -> None:
    """Give a claimed, unsent message back for its retry; `uncount` for a wait that never
    reached the provider (our own rate limit), so attempts count provider calls only."""
    conn.execute(
        text(
            """
            UPDATE messages SET sending_at = NULL,
                send_attempts = greatest(send_attempts - CASE WHEN :uncount THEN 1 ELSE 0 END, 0)
            WHERE id = :id AND status = 'pending' AND provider_message_id IS NULL
            """
        ),
        {"id": message_id, "uncount": uncount},
    )


def claim_for_send(conn: Connection, message_id: int) -> SendJob | None:
    """Count a send attempt on a still-unsent message and load what the send needs.

    None when the message was sent, failed, never existed or is still waiting for its
    scheduled time: a redelivered or premature send is a no-op. System scope (a worker serves
    every tenant).
    """
    row = conn.execute(
        text(
            """
            WITH claimed AS (
                UPDATE messages SET send_attempts = send_attempts + 1, sending_at = now()
                WHERE id = :id AND direction = 'out' AND status = 'pending'
                  AND provider_message_id IS NULL AND scheduled_at IS NULL
                  -- A lease: a second delivery of the same send (broker redelivery) finds
                  -- the message taken and does nothing, unless its holder died long ago.
                  AND (sending_at IS NULL
                       OR sending_at < now() - make_interval(secs => :lease_s))
                RETURNING *)
            SELECT m.id, m.tenant_id, m.ticket_id, m.channel_id, m.contact_id, ch.type, m.type,
                   m.body, m.media_url, m.media->0->>'filename', m.quoted_provider_message_id,
                   m.template::text, last_in.subject, last_in.thread_ids, ci.external_id,
                   t.last_inbound_at, c.opted_out, c.unreachable, m.send_attempts
            FROM claimed m
            JOIN channels ch ON ch.id = m.channel_id
            JOIN tickets t ON t.id = m.ticket_id
            JOIN contacts c ON c.id = m.contact_id
            LEFT JOIN LATERAL (
                SELECT external_id FROM contact_identities
                WHERE contact_id = m.contact_id AND channel_type = ch.type
                ORDER BY updated_at DESC LIMIT 1) ci ON true
            LEFT JOIN LATERAL (
                SELECT subject, thread_ids || provider_message_id AS thread_ids FROM messages
                WHERE ticket_id = m.ticket_id AND direction = 'in' AND subject IS NOT NULL
                ORDER BY id DESC LIMIT 1) last_in ON true
            """
        ),
        {"id": message_id, "lease_s": SEND_LEASE_S},
    ).first()
    if row is None:
        return None
    return SendJob(
        message_id=row[0],
        tenant_id=row[1],
        ticket_id=row[2],
        channel_id=row[3],
        contact_id=row[4],
        channel_type=ChannelType(row[5]),
        type=MessageType(row[6]),
        body=row[7],
        media_url=row[8],
        filename=row[9],
        quoted_provider_message_id=row[10],
        template=None if row[11] is None else Template.model_validate_json(row[11]),
        subject=row[12],
        thread_ids=tuple(row[13] or ()),
        recipient=row[14],
        last_inbound_at=row[15],
        opted_out=row[16],
        unreachable=row[17],
        attempt=row[18],
    )


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


def get_unsent_ids(conn: Connection, *, older_than_s: int, limit: int) -> list[int]:
    """Pending messages no worker ever picked up (their send message was lost). System scope.

    Messages with an attempt behind them are left to the broker's own retry schedule, so a
    sweep can never cause a second send of one that is merely waiting for its backoff.
    Scheduled messages wait for the scheduler; once released, their age counts from the
    release (status_at), not from when they were written.
    """
    rows = conn.execute(
        text(
            """
            SELECT id FROM messages
            WHERE direction = 'out' AND status = 'pending' AND send_attempts = 0
              AND scheduled_at IS NULL
              AND coalesce(status_at, created_at) < now() - make_interval(secs => :age)
            ORDER BY id LIMIT :limit
            """
        ),
        {"age": older_than_s, "limit": limit},
    ).all()
    return [int(r[0]) for r in rows]
