"""Lifecycle models of the inbound pipeline: ValidatedEvent ▸ EnrichedEvent ▸ RoutedEvent."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from engine.events import (
    ChannelType,
    ContactChange,
    Frozen,
    InboundEvent,
    InboundMessage,
    MessageDelete,
    MessageEdit,
    Reaction,
    Receipt,
)
from engine.store import conversations as conv

log = logging.getLogger(__name__)

STAGES = ("validate", "enrich", "route", "persist", "automate", "ack")
INBOUND_ACTOR = "process_inbox"
INBOUND_QUEUE = "inbound"

# Events that may create a contact, and events that only refer to an existing one.
ConversationEvent = InboundMessage | Reaction
ContactEvent = MessageEdit | MessageDelete | Receipt | ContactChange


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
    # (message id, media index) of every media item just stored, for the download actor.
    media_downloads: list[tuple[int, int]] = field(default_factory=list)
    deferred_inbox_ids: list[int] = field(default_factory=list)
    # Outbound messages recorded `pending` (bot and auto-replies), to send after commit.
    sends: list[int] = field(default_factory=list)


class Identity(Frozen):
    """How the pipeline recognises the person (or group) behind an event."""

    key: str
    phone: str | None = None
    email: str | None = None


def clean_text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; a provider body can."""
    return None if value is None else value.replace("\x00", "")


def without_nul(event: InboundEvent) -> InboundEvent:
    """The event with NUL removed from every string in it (captions, file names, locations,
    shared contacts, ids): PostgreSQL refuses NUL in text and in jsonb alike, and one such
    character would otherwise fail the whole webhook's batch."""
    return type(event).model_validate(_strip_nul(event.model_dump()))


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_strip_nul(v) for v in value)
    return value
