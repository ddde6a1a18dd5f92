"""enrich: lock each person in the batch, then find or create their contact."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from engine.events import (
    ChannelType,
    InboundMessage,
)
from engine.metrics import timed_stage
from engine.phone import normalize_phone
from engine.store import conversations as conv
from pipelines.inbound.models import (
    ContactEvent,
    ConversationEvent,
    EnrichedEvent,
    Identity,
    ValidatedEvent,
    clean_text,
)

log = logging.getLogger(__name__)

# enrich --------------------------------------------------------------------------------


def _identity(v: ValidatedEvent) -> Identity:
    """The sender's identity: E.164 on phone channels, the address on e-mail, else the id."""
    assert isinstance(v.event, ConversationEvent | ContactEvent)
    sender = v.event.sender
    if v.channel_type in (ChannelType.WHATSAPP, ChannelType.SMS):
        phone = normalize_phone(sender.phone or sender.external_id)
        if phone is not None:
            return Identity(key=phone, phone=phone)
    if v.channel_type is ChannelType.EMAIL:
        address = sender.external_id.strip().lower()
        return Identity(key=address, email=address)
    return Identity(key=sender.external_id)


def contact_lock_key(
    tenant_id: int, channel_type: str, identity_key: str, phone: str | None
) -> int:
    """A 64-bit advisory lock key per person (by phone when known, so channels agree)."""
    basis = f"{tenant_id}:{phone}" if phone else f"{tenant_id}:{channel_type}:{identity_key}"
    return int.from_bytes(hashlib.blake2b(basis.encode(), digest_size=8).digest(), signed=True)


def lock_key_of(v: ValidatedEvent) -> int | None:
    """The per-person lock an event needs, or None for events about no person (statuses)."""
    if not isinstance(v.event, ConversationEvent | ContactEvent):
        return None
    who = _identity(v)
    return contact_lock_key(v.tenant_id, v.channel_type, who.key, who.phone)


@timed_stage("enrich")
def enrich(events: Sequence[ValidatedEvent], *, conn: Connection) -> list[EnrichedEvent]:
    """Find or create the contact behind each event, in per-person timestamp order.

    The caller holds the lock of every person in `events` (see batch.py), so no concurrent
    transaction creates the same contact. Known identities are looked up in one round trip;
    only new people cost more. Idempotent: an identity is found before anything is created.
    Events that refer to a person (edits, receipts, contact changes) never create one.
    """
    keyed: list[tuple[int, ValidatedEvent, Identity]] = []
    others: list[ValidatedEvent] = []
    for v in events:
        if isinstance(v.event, ConversationEvent | ContactEvent):
            who = _identity(v)
            lock = contact_lock_key(v.tenant_id, v.channel_type, who.key, who.phone)
            keyed.append((lock, v, who))
        else:
            others.append(v)
    keyed.sort(key=lambda k: (k[0], _timestamp(k[1]), k[1].inbox_id, k[1].position))
    tenant_id = events[0].tenant_id if events else 0
    known = conv.get_known_identities(
        conn,
        tenant_id=tenant_id,
        identities=sorted({(v.channel_type.value, who.key) for _, v, who in keyed}),
    )
    out: list[EnrichedEvent] = []
    for _, v, who in keyed:
        out.append(_enrich_one(conn, v, who, known))
    out.extend(EnrichedEvent(validated=v, contact_id=None) for v in others)
    return out


def _enrich_one(
    conn: Connection,
    v: ValidatedEvent,
    who: Identity,
    known: dict[tuple[str, str], conv.KnownIdentity],
) -> EnrichedEvent:
    event = v.event
    assert isinstance(event, ConversationEvent | ContactEvent)
    found = known.get((v.channel_type.value, who.key))
    if not isinstance(event, ConversationEvent):  # refers to a person we may know
        return EnrichedEvent(validated=v, contact_id=None if found is None else found.contact_id)
    name = clean_text(event.sender.name)
    if found is not None:
        conv.refresh_identity(
            conn,
            tenant_id=v.tenant_id,
            channel_type=v.channel_type,
            identity_key=who.key,
            known=found,
            external_id=event.sender.external_id,
            name=name,
        )
        known[(v.channel_type.value, who.key)] = found.model_copy(
            update={"external_id": event.sender.external_id, "name": name or found.name}
        )
        return EnrichedEvent(validated=v, contact_id=found.contact_id)
    ref = conv.upsert_contact(
        conn,
        tenant_id=v.tenant_id,
        channel_type=v.channel_type,
        identity_key=who.key,
        external_id=event.sender.external_id,
        name=name,
        phone=who.phone,
        email=who.email,
        is_group=isinstance(event, InboundMessage) and event.is_group,
    )
    known[(v.channel_type.value, who.key)] = conv.KnownIdentity(
        contact_id=ref.id, external_id=event.sender.external_id, name=name
    )
    return EnrichedEvent(validated=v, contact_id=ref.id, contact_created=ref.created)


def _timestamp(v: ValidatedEvent) -> datetime:
    event = v.event
    assert isinstance(event, ConversationEvent | ContactEvent)
    return event.provider_timestamp
