"""Inbound pipeline: validate ▸ enrich ▸ route ▸ persist ▸ ack over a batch of inbox rows.

Everything here runs inside the caller's single transaction; `deliver` (realtime and tenant
webhooks) happens after commit, from the outbox ids this returns.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection

from adapters.base import InboundAdapter
from engine.db import set_system, set_tenant
from engine.events import (
    ChannelType,
    Frozen,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    ProviderNotice,
    Reaction,
    StatusUpdate,
)
from engine.phone import normalize_phone
from engine.store import conversations as conv
from engine.store.dead_letters import NewDeadLetter, insert_dead_letter
from engine.store.inbox import InboxRow, mark_inbox_done
from engine.store.outbox import insert_outbox
from engine.store.statuses import apply_status

log = logging.getLogger(__name__)

STAGES = ("validate", "enrich", "route", "persist", "ack")
INBOUND_ACTOR = "process_inbox"
INBOUND_QUEUE = "inbound"

ConversationEvent = InboundMessage | Reaction


class ValidatedEvent(Frozen):
    inbox_id: int
    tenant_id: int
    channel_id: int
    channel_type: ChannelType
    position: int
    event: InboundEvent


class EnrichedEvent(Frozen):
    validated: ValidatedEvent
    contact_id: int | None
    contact_created: bool = False


class RoutedEvent(Frozen):
    enriched: EnrichedEvent
    ticket: conv.TicketRef | None


@dataclass
class BatchOutcome:
    """What a batch did, for the actor's log line and the deliver step."""

    outbox_ids: list[int] = field(default_factory=list)
    messages_stored: int = 0
    duplicates: int = 0
    statuses_applied: int = 0
    rejected: int = 0
    tickets_created: int = 0


# validate ------------------------------------------------------------------------------


def validate(
    rows: Sequence[InboxRow], *, adapters: Mapping[ChannelType, InboundAdapter]
) -> list[ValidatedEvent]:
    """Parse each raw body with its channel's adapter. Pure; never raises for bad bodies."""
    out: list[ValidatedEvent] = []
    for row in rows:
        adapter = adapters.get(row.channel_type)
        events: Sequence[InboundEvent]
        if adapter is None:
            events = [MalformedEvent(reason=f"no adapter for {row.channel_type}", fragment="")]
        else:
            events = adapter.parse(
                row.body, address_id=row.address_id, content_type=row.content_type
            )
        for position, event in enumerate(events):
            out.append(
                ValidatedEvent(
                    inbox_id=row.id,
                    tenant_id=row.tenant_id,
                    channel_id=row.channel_id,
                    channel_type=row.channel_type,
                    position=position,
                    event=event,
                )
            )
    return out


# enrich --------------------------------------------------------------------------------


def _identity(v: ValidatedEvent) -> tuple[str, str | None]:
    """(identity key, E.164 phone) of the sender of a conversation event."""
    assert isinstance(v.event, InboundMessage | Reaction)
    sender = v.event.sender
    phone = normalize_phone(sender.phone or sender.external_id)
    if v.channel_type in (ChannelType.WHATSAPP, ChannelType.SMS) and phone is not None:
        return phone, phone
    return sender.external_id, None


def contact_lock_key(
    tenant_id: int, channel_type: str, identity_key: str, phone: str | None
) -> int:
    """A 64-bit advisory lock key per person (by phone when known, so channels agree)."""
    basis = f"{tenant_id}:{phone}" if phone else f"{tenant_id}:{channel_type}:{identity_key}"
    return int.from_bytes(hashlib.blake2b(basis.encode(), digest_size=8).digest(), signed=True)


def enrich(events: Sequence[ValidatedEvent], *, conn: Connection) -> list[EnrichedEvent]:
    """Upsert the contact behind each conversation event, in per-contact timestamp order.

    Takes the transaction-scoped advisory lock of every contact in the batch first (sorted),
    so concurrent batches touching the same person serialise instead of racing.
    Idempotent: a contact is found by its identity before anything is created.
    """
    keyed: list[tuple[int, ValidatedEvent, str, str | None]] = []
    others: list[ValidatedEvent] = []
    for v in events:
        if isinstance(v.event, InboundMessage | Reaction):
            key, phone = _identity(v)
            lock = contact_lock_key(v.tenant_id, v.channel_type, key, phone)
            keyed.append((lock, v, key, phone))
        else:
            others.append(v)
    conv.lock_contact_keys(conn, [k[0] for k in keyed])
    keyed.sort(key=lambda k: (k[0], k[1].event.provider_timestamp, k[1].inbox_id, k[1].position))  # type: ignore[union-attr]

    out: list[EnrichedEvent] = []
    for _, v, key, phone in keyed:
        event = v.event
        assert isinstance(event, InboundMessage | Reaction)
        ref = conv.upsert_contact(
            conn,
            tenant_id=v.tenant_id,
            channel_type=v.channel_type,
            identity_key=key,
            external_id=event.sender.external_id,
            name=_clean(event.sender.name),
            phone=phone,
        )
        out.append(EnrichedEvent(validated=v, contact_id=ref.id, contact_created=ref.created))
    out.extend(EnrichedEvent(validated=v, contact_id=None) for v in others)
    return out


# route ---------------------------------------------------------------------------------


def route(events: Sequence[EnrichedEvent], *, conn: Connection) -> list[RoutedEvent]:
    """Find or create the live ticket of each inbound message's contact.

    Reactions and statuses attach to existing messages and need no ticket; neither does a
    message stored before (a redelivery must not reopen a ticket closed since). Queue, agent
    and bot decisions are made here too once automation exists; today every new ticket
    waits, pending, for any agent.
    """
    out: list[RoutedEvent] = []
    for e in events:
        v = e.validated
        ticket = None
        if (
            isinstance(v.event, InboundMessage)
            and e.contact_id is not None
            and conv.get_message_by_provider_id(
                conn, channel_id=v.channel_id, provider_message_id=v.event.provider_message_id
            )
            is None
        ):
            ticket = conv.find_or_create_ticket(
                conn, tenant_id=v.tenant_id, channel_id=v.channel_id, contact_id=e.contact_id
            )
        out.append(RoutedEvent(enriched=e, ticket=ticket))
    return out


# persist -------------------------------------------------------------------------------


def persist(events: Sequence[RoutedEvent], *, conn: Connection) -> BatchOutcome:
    """Write messages, reactions, statuses, ticket counters, ticket events and outbox rows.

    Idempotent: a message already stored (same channel and provider id) is counted as a
    duplicate and changes nothing; status and reaction writes only move forward in time.
    """
    outcome = BatchOutcome()
    for r in events:
        v = r.enriched.validated
        event = v.event
        if isinstance(event, InboundMessage):
            if r.ticket is None:
                outcome.duplicates += 1  # stored before, so route gave it no ticket
            else:
                _persist_message(conn, r, event, outcome)
        elif isinstance(event, Reaction) and r.enriched.contact_id is not None:
            _persist_reaction(conn, v, event, r.enriched.contact_id, outcome)
        elif isinstance(event, StatusUpdate):
            _persist_status(conn, v, event, outcome)
    return outcome


def _persist_message(
    conn: Connection, r: RoutedEvent, event: InboundMessage, outcome: BatchOutcome
) -> None:
    v = r.enriched.validated
    ticket = r.ticket
    contact_id = r.enriched.contact_id
    assert ticket is not None and contact_id is not None
    if ticket.created:
        outcome.tickets_created += 1
        conv.insert_ticket_event(
            conn,
            tenant_id=v.tenant_id,
            ticket_id=ticket.id,
            type="created",
            data={"status": "pending", "protocol": ticket.protocol, "source": "inbound"},
        )
        outcome.outbox_ids.append(
            insert_outbox(
                conn,
                tenant_id=v.tenant_id,
                topic="ticket.created",
                payload={"ticket_id": ticket.id, "contact_id": contact_id, "status": "pending"},
            )
        )
    message_id = conv.insert_inbound_message(conn, _new_message(v, event, ticket.id, contact_id))
    if message_id is None:
        outcome.duplicates += 1
        return
    outcome.messages_stored += 1
    conv.mark_ticket_inbound(conn, ticket_id=ticket.id, at=event.provider_timestamp)
    conv.insert_ticket_event(
        conn,
        tenant_id=v.tenant_id,
        ticket_id=ticket.id,
        type="message_received",
        data={"message_id": message_id},
    )
    outcome.outbox_ids.append(
        insert_outbox(
            conn,
            tenant_id=v.tenant_id,
            topic="message.created",
            payload={
                "message_id": message_id,
                "ticket_id": ticket.id,
                "contact_id": contact_id,
                "direction": "in",
                "type": event.type,
            },
        )
    )


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
        body=_clean(event.body),
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
        error_code=event.error_code,
        error_message=event.error_title,
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
) -> None:
    message_id = apply_status(
        conn,
        tenant_id=v.tenant_id,
        channel_id=v.channel_id,
        provider_message_id=event.provider_message_id,
        status=event.status,
        at=event.provider_timestamp,
        error_code=event.error_code,
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


# ack -----------------------------------------------------------------------------------


def ack(
    rows: Sequence[InboxRow],
    events: Sequence[ValidatedEvent],
    *,
    conn: Connection,
    outcome: BatchOutcome,
) -> None:
    """Mark each inbox row done; dead-letter malformed parts with their reason.

    A row whose every event was malformed is `dead`; one with some malformed parts is
    `partial`; one with only provider notices is `ignored`. System scope.
    """
    by_row: dict[int, list[ValidatedEvent]] = defaultdict(list)
    for v in events:
        by_row[v.inbox_id].append(v)
    for row in rows:
        row_events = by_row.get(row.id, [])
        malformed = [v for v in row_events if isinstance(v.event, MalformedEvent)]
        notices = [v.event for v in row_events if isinstance(v.event, ProviderNotice)]
        for v in malformed:
            assert isinstance(v.event, MalformedEvent)
            _dead_letter_malformed(conn, row, v.event)
            outcome.rejected += 1
        useful = len(row_events) - len(malformed) - len(notices)
        if malformed and useful == 0:
            status = "dead"
        elif malformed:
            status = "partial"
        elif useful == 0:
            status = "ignored"
        else:
            status = "processed"
        note = "; ".join(
            [
                f"malformed: {v.event.reason}"
                for v in malformed
                if isinstance(v.event, MalformedEvent)
            ]
            + [f"notice {n.code}: {n.title}" for n in notices]
        )
        mark_inbox_done(conn, row.id, status=status, note=note[:1000] or None)


def _dead_letter_malformed(conn: Connection, row: InboxRow, event: MalformedEvent) -> None:
    payload = {
        "queue_name": INBOUND_QUEUE,
        "actor_name": INBOUND_ACTOR,
        "args": [[row.id]],
        "kwargs": {"reparse": True},
        "options": {},
        "detail": {"inbox_id": row.id, "fragment": event.fragment[:2000]},
    }
    insert_dead_letter(
        conn,
        NewDeadLetter(
            tenant_id=row.tenant_id,
            actor="inbound.validate",
            queue=INBOUND_QUEUE,
            message_id=None,
            payload_json=json.dumps(payload),
            error_class="InvalidPayloadError",
            error_message=event.reason[:1000],
            traceback=None,
            attempts=1,
        ),
    )
    log.info(
        "malformed event dead-lettered",
        extra={"inbox_id": row.id, "tenant_id": row.tenant_id, "channel_id": row.channel_id},
    )


# the whole batch -----------------------------------------------------------------------


def process_batch(
    rows: Sequence[InboxRow],
    *,
    conn: Connection,
    adapters: Mapping[ChannelType, InboundAdapter],
) -> BatchOutcome:
    """Run every stage over claimed rows, tenant by tenant, in the caller's transaction."""
    validated = validate(rows, adapters=adapters)
    outcome = BatchOutcome()
    by_tenant: dict[int, list[ValidatedEvent]] = defaultdict(list)
    for v in validated:
        if not isinstance(v.event, MalformedEvent | ProviderNotice):
            by_tenant[v.tenant_id].append(v)
    for tenant_id in sorted(by_tenant):
        set_tenant(conn, tenant_id)
        part = persist(route(enrich(by_tenant[tenant_id], conn=conn), conn=conn), conn=conn)
        _merge(outcome, part)
    set_system(conn)
    ack(rows, validated, conn=conn, outcome=outcome)
    return outcome


def _merge(into: BatchOutcome, part: BatchOutcome) -> None:
    into.outbox_ids.extend(part.outbox_ids)
    into.messages_stored += part.messages_stored
    into.duplicates += part.duplicates
    into.statuses_applied += part.statuses_applied
    into.tickets_created += part.tickets_created


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; a provider body can."""
    return None if value is None else value.replace("\x00", "")
