"""persist: write messages, reactions, statuses, edits, ticket counters and outbox rows."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection

from engine.events import (
    ContactChange,
    InboundMessage,
    MessageDelete,
    MessageEdit,
    Reaction,
    Receipt,
    StatusUpdate,
)
from engine.metrics import timed_stage
from engine.store import conversations as conv
from engine.store.outbox import insert_outbox
from engine.store.statuses import apply_status, apply_watermark
from pipelines.campaigns.progress import follow_message_statuses
from pipelines.inbound.models import (
    BatchOutcome,
    RoutedEvent,
    ValidatedEvent,
    clean_text,
)

log = logging.getLogger(__name__)

# persist -------------------------------------------------------------------------------


@timed_stage("persist")
def persist(events: Sequence[RoutedEvent], *, conn: Connection) -> BatchOutcome:
    """Write messages, reactions, statuses, ticket counters, ticket events and outbox rows.

    Idempotent: a message already stored (same channel and provider id) is counted as a
    duplicate and changes nothing; status and reaction writes only move forward in time.
    """
    outcome = BatchOutcome()
    status_changed: dict[int, list[int]] = defaultdict(list)  # message ids by tenant
    # Messages first and all at once: a reaction, edit or deletion later in the batch then
    # finds the message it is about, whatever order the provider sent them in.
    _persist_messages(conn, events, outcome)
    for r in events:
        v = r.enriched.validated
        event = v.event
        if isinstance(event, InboundMessage):
            continue
        if isinstance(event, Reaction) and r.enriched.contact_id is not None:
            _persist_reaction(conn, v, event, r.enriched.contact_id, outcome)
        elif isinstance(event, StatusUpdate):
            status_changed[v.tenant_id] += _persist_status(conn, v, event, outcome)
        elif isinstance(event, MessageEdit | MessageDelete):
            _persist_change(conn, v, event, outcome)
        elif isinstance(event, Receipt):
            changed = _persist_receipt(conn, v, event, r.enriched.contact_id, outcome)
            status_changed[v.tenant_id] += changed
        elif isinstance(event, ContactChange):
            _persist_contact_change(conn, v, event, r.enriched.contact_id, outcome)
    # Campaign recipients follow their messages once per batch: campaigns locked in id order.
    for tenant_id, message_ids in sorted(status_changed.items()):
        outcome.outbox_ids += follow_message_statuses(
            conn, tenant_id=tenant_id, message_ids=message_ids
        )
    return outcome


def _outbox(
    conn: Connection, outcome: BatchOutcome, v: ValidatedEvent, topic: str, **payload: object
) -> None:
    outcome.outbox_ids.append(
        insert_outbox(conn, tenant_id=v.tenant_id, topic=topic, payload=payload)
    )


def _persist_change(
    conn: Connection, v: ValidatedEvent, event: MessageEdit | MessageDelete, outcome: BatchOutcome
) -> None:
    if isinstance(event, MessageEdit):
        changed = conv.apply_edit(
            conn,
            channel_id=v.channel_id,
            provider_message_id=event.provider_message_id,
            body=clean_text(event.body),
            at=event.provider_timestamp,
        )
        change = "edited"
    else:
        changed = conv.apply_delete(
            conn,
            channel_id=v.channel_id,
            provider_message_id=event.provider_message_id,
            at=event.provider_timestamp,
        )
        change = "deleted"
    if changed is not None:
        message_id, ticket_id = changed
        _outbox(
            conn,
            outcome,
            v,
            "message.updated",
            message_id=message_id,
            ticket_id=ticket_id,
            change=change,
        )


def _persist_receipt(
    conn: Connection,
    v: ValidatedEvent,
    event: Receipt,
    contact_id: int | None,
    outcome: BatchOutcome,
) -> list[int]:
    changed: list[int] = []
    for provider_message_id in event.provider_message_ids:
        message_id = apply_status(
            conn,
            tenant_id=v.tenant_id,
            channel_id=v.channel_id,
            provider_message_id=provider_message_id,
            status=event.status,
            at=event.provider_timestamp,
            error_code=None,
            error_message=None,
        )
        if message_id is not None:
            changed.append(message_id)
    if event.watermark is not None and contact_id is not None:
        changed += apply_watermark(
            conn,
            channel_id=v.channel_id,
            contact_id=contact_id,
            status=event.status,
            watermark=event.watermark,
            at=event.provider_timestamp,
        )
    outcome.statuses_applied += len(changed)
    for message_id in changed:
        _outbox(conn, outcome, v, "message.status", message_id=message_id, status=event.status)
    return changed


def _persist_messages(
    conn: Connection, events: Sequence[RoutedEvent], outcome: BatchOutcome
) -> None:
    """Store every new inbound message of the batch, and announce the tickets they opened."""
    created: list[conv.CreatedTicket] = []
    new: list[tuple[InboundMessage, conv.NewInboundMessage]] = []
    for r in events:
        v = r.enriched.validated
        event = v.event
        if not isinstance(event, InboundMessage):
            continue
        ticket, contact_id = r.ticket, r.enriched.contact_id
        if ticket is None or contact_id is None:
            outcome.duplicates += 1  # stored before, so route gave it no ticket
            continue
        if ticket.created:
            created.append(
                conv.CreatedTicket(
                    tenant_id=v.tenant_id,
                    ticket_id=ticket.id,
                    contact_id=contact_id,
                    protocol=ticket.protocol,
                )
            )
        new.append((event, _new_message(v, event, ticket.id, contact_id)))
    outcome.tickets_created += len(created)
    outcome.outbox_ids += conv.record_tickets_created(conn, created)
    stored = conv.store_inbound_messages(conn, [row for _, row in new])
    for (event, _), result in zip(new, stored, strict=True):
        if result is None:
            outcome.duplicates += 1
            continue
        message_id, outbox_id = result
        outcome.messages_stored += 1
        outcome.outbox_ids.append(outbox_id)
        outcome.media_downloads.extend((message_id, i) for i in range(len(event.media)))


def _new_message(
    v: ValidatedEvent, event: InboundMessage, ticket_id: int, contact_id: int
) -> conv.NewInboundMessage:
    def dump(value: object) -> str | None:
        return None if value is None else json.dumps(value)

    return conv.NewInboundMessage(
        tenant_id=v.tenant_id,
        ticket_id=ticket_id,
        contact_id=contact_id,
        channel_id=v.channel_id,
        type=event.type,
        body=clean_text(event.body),
        media_json=json.dumps([m.model_dump(mode="json") for m in event.media]),
        location_json=dump(event.location and event.location.model_dump(mode="json")),
        shared_contacts_json=dump(
            [c.model_dump(mode="json") for c in event.contacts] if event.contacts else None
        ),
        referral_json=dump(event.referral and event.referral.model_dump(mode="json")),
        reply_id=event.reply_id,
        quoted_provider_message_id=event.quoted_provider_message_id,
        provider_message_id=event.provider_message_id,
        provider_timestamp=event.provider_timestamp,
        error_code=None if event.error_code is None else str(event.error_code),
        error_message=event.error_title,
        author_external_id=event.author.external_id if event.author else None,
        author_name=clean_text(event.author.name) if event.author else None,
        subject=clean_text(event.subject),
        thread_ids=list(event.thread_ids),
        story_url=event.story_url,
    )


def _persist_reaction(
    conn: Connection, v: ValidatedEvent, event: Reaction, contact_id: int, outcome: BatchOutcome
) -> None:
    target = conv.get_message_by_provider_id(
        conn, channel_id=v.channel_id, provider_message_id=event.target_provider_message_id
    )
    if target is None:
        log.info("reaction to unknown message ignored", extra={"inbox_id": v.inbox_id})
        return
    message_id, ticket_id = target
    changed = conv.upsert_reaction(
        conn,
        tenant_id=v.tenant_id,
        message_id=message_id,
        contact_id=contact_id,
        emoji=event.emoji,
        at=event.provider_timestamp,
    )
    if changed:
        outcome.outbox_ids.append(
            insert_outbox(
                conn,
                tenant_id=v.tenant_id,
                topic="message.updated",
                payload={"message_id": message_id, "ticket_id": ticket_id, "reaction": True},
            )
        )


def _persist_status(
    conn: Connection, v: ValidatedEvent, event: StatusUpdate, outcome: BatchOutcome
) -> list[int]:
    message_id = apply_status(
        conn,
        tenant_id=v.tenant_id,
        channel_id=v.channel_id,
        provider_message_id=event.provider_message_id,
        status=event.status,
        at=event.provider_timestamp,
        error_code=None if event.error_code is None else str(event.error_code),
        error_message=event.error_title,
    )
    if message_id is not None:
        outcome.statuses_applied += 1
        outcome.outbox_ids.append(
            insert_outbox(
                conn,
                tenant_id=v.tenant_id,
                topic="message.status",
                payload={"message_id": message_id, "status": event.status},
            )
        )
    return [] if message_id is None else [message_id]


def _persist_contact_change(
    conn: Connection,
    v: ValidatedEvent,
    event: ContactChange,
    contact_id: int | None,
    outcome: BatchOutcome,
) -> None:
    if contact_id is None:
        return  # about someone we never heard from: nothing to update
    changed = conv.update_contact_flags(
        conn, contact_id=contact_id, unreachable=event.unreachable, opted_out=event.opted_out
    )
    if changed:
        _outbox(conn, outcome, v, "contact.updated", contact_id=contact_id)
