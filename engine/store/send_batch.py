"""Batched sends: claim many pending messages in one statement, settle their outcomes set-based."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from engine.events import (
    ChannelConfig,
    ChannelConnection,
    ChannelType,
    Frozen,
    MessageType,
    Template,
)
from engine.secrets_box import open_secrets

# How long a claimed send may run before another delivery may take it over (a crashed worker).
SEND_LEASE_S = 120

# A pending send (alias m) tried before that nothing will finish unless it is offered again:
# taken by a worker that is long gone (it died mid-send, or its outcome could not be
# stored), or handed back for a retry whose broker message never came. Binds :age,
# :lease_s and :retry_lost_s. A re-offer is safe: the claim takes a message once.
SEND_ABANDONED = """(
    m.sending_at < now() - make_interval(secs => CAST(:lease_s AS integer) + :age)
    OR (m.send_attempts > 0 AND m.sending_at IS NULL
        AND coalesce(m.released_at, m.status_at, m.created_at)
            < now() - make_interval(secs => :retry_lost_s)))"""
# One no worker ever picked up (its age is the caller's to judge).
SEND_UNTRIED = "(m.send_attempts = 0 AND m.sending_at IS NULL)"


def retry_lost_after_s(max_backoff_ms: int) -> int:
    """How long after a send was handed back its retry counts as lost: well past the longest
    backoff, and never under an hour."""
    return max(3600, 2 * max_backoff_ms // 1000)


# Delivery statuses in the order they may move (failed ends an attempt).
_RANK = "array_position(ARRAY['pending','sent','delivered','read','failed'], {})"


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


class ClaimedSend(SendJob):
    """A claimed message with its channel's connection (config and secrets) and send type."""

    channel: ChannelConnection
    send_type: str | None


class Ack(Frozen):
    message_id: int
    channel_id: int
    provider_message_id: str


class Acked(Frozen):
    """A message stored as sent: its status afterwards (an early `delivered` may have been
    waiting) and the outbox row announcing it."""

    message_id: int
    tenant_id: int
    status: str
    outbox_id: int


class Failure(Frozen):
    message_id: int
    code: str | None
    reason: str


class Failed(Frozen):
    message_id: int
    tenant_id: int
    outbox_id: int


CLAIM_SENDS = text(
    """
    WITH locked AS (
        -- Row locks in id order, so two overlapping batches never deadlock.
        SELECT id FROM messages
        WHERE id = ANY(CAST(:ids AS bigint[])) AND direction = 'out' AND status = 'pending'
          AND provider_message_id IS NULL AND scheduled_at IS NULL
          -- A lease: a second delivery of the same send (broker redelivery) finds the
          -- message taken and does nothing, unless its holder died long ago.
          AND (sending_at IS NULL OR sending_at < now() - make_interval(secs => :lease_s))
        ORDER BY id FOR UPDATE),
    claimed AS (
        UPDATE messages m SET send_attempts = m.send_attempts + 1, sending_at = now()
        FROM locked WHERE m.id = locked.id
        RETURNING m.*)
    SELECT m.id, m.tenant_id, m.ticket_id, m.channel_id, m.contact_id, ch.type, m.type,
           m.body, m.media_url, m.media->0->>'filename', m.quoted_provider_message_id,
           m.template::text, last_in.subject, last_in.thread_ids, ci.external_id,
           t.last_inbound_at, c.opted_out, c.unreachable, m.send_attempts, m.send_type,
           ch.external_id, ch.config::text, ch.secrets::text
    FROM claimed m
    JOIN channels ch ON ch.id = m.channel_id
    JOIN tickets t ON t.id = m.ticket_id
    JOIN contacts c ON c.id = m.contact_id
    LEFT JOIN LATERAL (
        SELECT external_id FROM contact_identities
        WHERE contact_id = m.contact_id AND channel_type = ch.type
        ORDER BY updated_at DESC LIMIT 1) ci ON true
    LEFT JOIN LATERAL (
        -- Only e-mail threads on a subject; elsewhere this would walk the whole ticket.
        SELECT subject, thread_ids || provider_message_id AS thread_ids FROM messages
        WHERE ch.type = 'email' AND ticket_id = m.ticket_id AND direction = 'in'
          AND subject IS NOT NULL
        ORDER BY id DESC LIMIT 1) last_in ON true
    ORDER BY m.id
    """
)

# A claimed message becomes `sent`, unless a status that arrived before the ack (a fast
# `delivered`, kept in message_status_events) is further along: then it takes that one.
_ACKED_STATUS = "CASE WHEN m.status = 'pending' THEN 'sent' ELSE m.status END"
_EARLY_WINS = f"{_RANK.format('b.status')} > {_RANK.format(_ACKED_STATUS)}"

# Provider ids, statuses, the `sent` status events and the outbox rows of every acknowledged
# send, in one statement.
ACK_SENDS = text(
    f"""
    WITH acked AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:channels AS bigint[]),
                             CAST(:pids AS text[])) AS a(id, channel_id, pid)),
    early AS (
        UPDATE message_status_events e SET message_id = a.id
        FROM acked a
        WHERE e.channel_id = a.channel_id AND e.provider_message_id = a.pid
        RETURNING a.id, e.status, e.error_code, e.error_message, e.provider_timestamp),
    best AS (
        SELECT DISTINCT ON (id) * FROM early ORDER BY id, {_RANK.format("status")} DESC),
    done AS (
        UPDATE messages m SET provider_message_id = a.pid, sending_at = NULL,
            status = CASE WHEN {_EARLY_WINS} THEN b.status ELSE {_ACKED_STATUS} END,
            status_at = CASE WHEN {_EARLY_WINS} THEN b.provider_timestamp ELSE now() END,
            error_code = CASE WHEN {_EARLY_WINS} THEN coalesce(b.error_code, m.error_code)
                              ELSE m.error_code END,
            error_message = CASE WHEN {_EARLY_WINS}
                                 THEN coalesce(b.error_message, m.error_message)
                                 ELSE m.error_message END
        FROM acked a LEFT JOIN best b ON b.id = a.id
        WHERE m.id = a.id
        RETURNING m.id, m.tenant_id, m.ticket_id, m.channel_id, m.status),
    sent_events AS (
        INSERT INTO message_status_events (tenant_id, channel_id, provider_message_id,
            message_id, status, provider_timestamp)
        SELECT d.tenant_id, d.channel_id, a.pid, d.id, 'sent', now()
        FROM done d JOIN acked a ON a.id = d.id
        WHERE NOT EXISTS (SELECT 1 FROM early e WHERE e.id = d.id AND e.status = 'sent')
        ON CONFLICT (channel_id, provider_message_id, status) DO NOTHING),
    announced AS (
        INSERT INTO outbox (tenant_id, topic, payload)
        SELECT tenant_id, 'message.status',
               jsonb_build_object('message_id', id, 'ticket_id', ticket_id, 'status', status)
        FROM done ORDER BY id
        RETURNING id, (payload->>'message_id')::bigint AS message_id)
    SELECT d.id, d.tenant_id, d.status, o.id
    FROM done d JOIN announced o ON o.message_id = d.id
    ORDER BY d.id
    """  # noqa: S608 - the fragments are constants, values are bound
)

FAIL_SENDS = text(
    """
    WITH failing AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:codes AS text[]),
                             CAST(:reasons AS text[])) AS f(id, code, reason)),
    done AS (
        UPDATE messages m SET status = 'failed', status_at = now(), sending_at = NULL,
            error_code = f.code, error_message = f.reason
        FROM failing f
        WHERE m.id = f.id AND m.status = 'pending'
        RETURNING m.id, m.tenant_id, m.ticket_id),
    announced AS (
        INSERT INTO outbox (tenant_id, topic, payload)
        SELECT tenant_id, 'message.status',
               jsonb_build_object('message_id', id, 'ticket_id', ticket_id, 'status', 'failed')
        FROM done ORDER BY id
        RETURNING id, (payload->>'message_id')::bigint AS message_id)
    SELECT d.id, d.tenant_id, o.id FROM done d JOIN announced o ON o.message_id = d.id
    ORDER BY d.id
    """
)

# A failed send an operator requeues goes back to pending with fresh attempts, announced.
REOPEN_SENDS = text(
    """
    WITH reopened AS (
        UPDATE messages m SET status = 'pending', status_at = now(), send_attempts = 0,
            sending_at = NULL, released_at = NULL, error_code = NULL, error_message = NULL
        WHERE m.id = ANY(CAST(:ids AS bigint[])) AND m.direction = 'out'
          AND m.status = 'failed' AND m.provider_message_id IS NULL
          AND m.send_type IS DISTINCT FROM 'campaign'
        RETURNING m.id, m.tenant_id, m.ticket_id)
    INSERT INTO outbox (tenant_id, topic, payload)
    SELECT tenant_id, 'message.status',
           jsonb_build_object('message_id', id, 'ticket_id', ticket_id, 'status', 'pending')
    FROM reopened ORDER BY id
    RETURNING id
    """
)

# `uncount` gives back the attempt the claim counted, for a send that never reached the
# provider (our own rate limit, the batch's time budget): attempts count provider calls.
RELEASE_SENDS = text(
    """
    UPDATE messages m SET sending_at = NULL, released_at = now(),
        send_attempts = greatest(m.send_attempts - CASE WHEN r.uncount THEN 1 ELSE 0 END, 0)
    FROM unnest(CAST(:ids AS bigint[]), CAST(:uncount AS boolean[])) AS r(id, uncount)
    WHERE m.id = r.id AND m.status = 'pending' AND m.provider_message_id IS NULL
    """
)


def claim_sends(conn: Connection, message_ids: Sequence[int]) -> list[ClaimedSend]:
    """Count a send attempt on each still-unsent message among `message_ids` (lease rule as
    above) and load what its send needs, channel connection included; in id order.

    Sent, failed, scheduled, leased or unknown ids are left out: a redelivered or premature
    send is a no-op. System scope (a worker serves every tenant).
    """
    if not message_ids:
        return []
    rows = conn.execute(
        CLAIM_SENDS, {"ids": sorted(set(message_ids)), "lease_s": SEND_LEASE_S}
    ).all()
    channels: dict[int, ChannelConnection] = {}
    return [_claimed(r, channels) for r in rows]


def _claimed(row: Sequence[Any], channels: dict[int, ChannelConnection]) -> ClaimedSend:
    channel_id = int(row[3])
    channel = channels.get(channel_id)
    if channel is None:
        channel = channels[channel_id] = ChannelConnection(
            id=channel_id,
            tenant_id=row[1],
            type=ChannelType(row[5]),
            external_id=row[20],
            config=ChannelConfig.model_validate_json(row[21]),
            secrets=open_secrets(row[22]),
        )
    template = row[11]
    return ClaimedSend.model_validate(
        {
            "message_id": row[0],
            "tenant_id": row[1],
            "ticket_id": row[2],
            "channel_id": channel_id,
            "contact_id": row[4],
            "channel_type": channel.type,
            "type": MessageType(row[6]),
            "body": row[7],
            "media_url": row[8],
            "filename": row[9],
            "quoted_provider_message_id": row[10],
            "template": None if template is None else Template.model_validate_json(template),
            "subject": row[12],
            "thread_ids": tuple(row[13] or ()),
            "recipient": row[14],
            "last_inbound_at": row[15],
            "opted_out": row[16],
            "unreachable": row[17],
            "attempt": row[18],
            "send_type": row[19],
            "channel": channel,
        }
    )


def ack_sends(conn: Connection, acks: Sequence[Ack]) -> list[Acked]:
    """Store the provider's ids and `sent` for every acknowledged send in one statement;
    statuses that arrived before the ack are applied (forward only). In id order."""
    if not acks:
        return []
    rows = conn.execute(
        ACK_SENDS,
        {
            "ids": [a.message_id for a in acks],
            "channels": [a.channel_id for a in acks],
            "pids": [a.provider_message_id for a in acks],
        },
    ).all()
    return [Acked(message_id=r[0], tenant_id=r[1], status=r[2], outbox_id=r[3]) for r in rows]


def fail_sends(conn: Connection, failures: Sequence[Failure]) -> list[Failed]:
    """Sends that will not happen: `failed` with the provider's code and text, announced."""
    if not failures:
        return []
    rows = conn.execute(
        FAIL_SENDS,
        {
            "ids": [f.message_id for f in failures],
            "codes": [f.code for f in failures],
            "reasons": [f.reason[:1000] for f in failures],
        },
    ).all()
    return [Failed(message_id=r[0], tenant_id=r[1], outbox_id=r[2]) for r in rows]


def reopen_failed_sends(conn: Connection, message_ids: Sequence[int]) -> list[int]:
    """Put failed, never-delivered sends back to pending with fresh attempts (an operator
    requeued their dead letters); the outbox ids announcing it. Campaign sends stay failed:
    their recipient rows and counts have moved on. System scope."""
    if not message_ids:
        return []
    rows = conn.execute(REOPEN_SENDS, {"ids": sorted(set(message_ids))})
    return [int(r[0]) for r in rows]


def release_sends(conn: Connection, releases: Sequence[tuple[int, bool]]) -> None:
    """Give claimed, unsent messages back for a later send: (message id, uncount)."""
    if not releases:
        return
    conn.execute(
        RELEASE_SENDS,
        {"ids": [m for m, _ in releases], "uncount": [u for _, u in releases]},
    )
