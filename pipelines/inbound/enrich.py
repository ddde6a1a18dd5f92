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


def enrich(events: Sequence[ValidatedEvent], *, conn: Connection) -> list[EnrichedEvent]:
    """Upsert the contact behind each conversation event, in per-contact timestamp order.

    Takes the transaction-scoped advisory lock of every contact in the batch first (sorted),
    so concurrent batches touching the same person serialise instead of racing.
    Idempotent: a contact is found by its identity before anything is created.
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
    conv.lock_contact_keys(conn, [k[0] for k in keyed])
    keyed.sort(key=lambda k: (k[0], _timestamp(k[1]), k[1].inbox_id, k[1].position))

    out: list[EnrichedEvent] = []
    for _, v, who in keyed:
        event = v.event
        if isinstance(event, ConversationEvent):
            ref = conv.upsert_contact(
                conn,
                tenant_id=v.tenant_id,
                channel_type=v.channel_type,
                identity_key=who.key,
                external_id=event.sender.external_id,
                name=clean_text(event.sender.name),
                phone=who.phone,
                email=who.email,
                is_group=isinstance(event, InboundMessage) and event.is_group,
            )
            out.append(EnrichedEvent(validated=v, contact_id=ref.id, contact_created=ref.created))
        else:  # refers to a person we may know; never creates one
            contact_id = conv.get_contact_by_identity(
                conn, tenant_id=v.tenant_id, channel_type=v.channel_type, identity_key=who.key
            )
            out.append(EnrichedEvent(validated=v, contact_id=contact_id))
    out.extend(EnrichedEvent(validated=v, contact_id=None) for v in others)
    return out


def _timestamp(v: ValidatedEvent) -> datetime:
    event = v.event
    assert isinstance(event, ConversationEvent | ContactEvent)
    return event.provider_timestamp
