"""Read models of the ticket screen: tickets, messages and contact cards as the API shows them."""

from __future__ import annotations

import base64
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.queries.common import UtcDatetime

MAX_BIGINT = 2**63 - 1
_MAX_CURSOR_CHARS = 200

TicketStatus = Literal["pending", "open", "closed"]
TICKET_STATUSES: tuple[TicketStatus, ...] = ("pending", "open", "closed")
MessageStatus = Literal["pending", "sent", "delivered", "read", "failed", "received"]


class _View(BaseModel):
    """Base of API views: immutable, and exactly the fields the API returns."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class _Stored(BaseModel):
    """Base for shapes read back from jsonb columns: keys we do not expose are dropped."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ChannelRef(_View):
    id: int
    type: str
    name: str


class ContactRef(_View):
    id: int
    name: str | None
    phone: str | None


class TicketView(_View):
    id: int
    status: TicketStatus
    protocol: str
    channel: ChannelRef
    contact: ContactRef
    unread_count: int
    answered: bool
    is_group: bool
    last_message_at: UtcDatetime | None
    queue_id: int | None
    user_id: int | None
    accepted_at: UtcDatetime | None = None
    closed_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class TicketCursor(_View):
    """Position in the ticket list: the last ticket of the previous page."""

    last_message_at: UtcDatetime | None
    id: int = Field(ge=1, le=MAX_BIGINT)

    def encode(self) -> str:
        """The opaque string handed to clients."""
        stamp = None if self.last_message_at is None else self.last_message_at.isoformat()
        raw = json.dumps([stamp, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, value: str) -> TicketCursor:
        """Parse a string made by `encode`; ValueError for anything else."""
        if not value or len(value) > _MAX_CURSOR_CHARS:
            raise ValueError("not a cursor returned by this API")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            stamp, ticket_id = json.loads(raw)
            return cls.model_validate({"last_message_at": stamp, "id": ticket_id})
        except (ValueError, TypeError):  # bad base64/JSON/shape; ValidationError is a ValueError
            raise ValueError("not a cursor returned by this API") from None


class TicketPage(_View):
    items: tuple[TicketView, ...]
    next_cursor: str | None


class MediaView(_Stored):
    type: str
    mime_type: str | None = None
    provider_media_id: str | None = None
    filename: str | None = None
    caption: str | None = None


class LocationView(_Stored):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class StatusView(_View):
    """One step of an outbound message's delivery, as the provider reported it."""

    status: str
    at: UtcDatetime
    error_code: str | None = None
    error_message: str | None = None


class MessageChangeView(_View):
    """The latest edit or deletion asked of a sent message, and how the provider answered."""

    kind: Literal["edit", "delete"]
    status: Literal["pending", "done", "failed"]
    error_code: str | None
    error_message: str | None
    requested_at: UtcDatetime
    finished_at: UtcDatetime | None


class MessageView(_View):
    id: int
    ticket_id: int
    direction: Literal["in", "out"]
    type: str
    body: str | None
    media: tuple[MediaView, ...]
    location: LocationView | None
    provider_message_id: str | None
    quoted_message_id: int | None
    status: MessageStatus
    error_code: str | None
    error_message: str | None
    status_history: tuple[StatusView, ...] = ()
    subject: str | None = None
    author_name: str | None = None
    send_type: str | None
    user_id: int | None
    # Set while a scheduled message waits; cleared when the scheduler hands it to a worker.
    scheduled_at: UtcDatetime | None = None
    provider_timestamp: UtcDatetime | None
    edited_at: UtcDatetime | None
    deleted_at: UtcDatetime | None
    last_change: MessageChangeView | None = None
    created_at: UtcDatetime


class MessagePage(_View):
    items: tuple[MessageView, ...]
    next_after_id: int | None


class IdentityView(_View):
    channel_type: str
    external_id: str


class ContactView(_View):
    id: int
    name: str | None
    phone: str | None
    email: str | None
    is_group: bool
    opted_out: bool
    identities: tuple[IdentityView, ...]
    created_at: UtcDatetime
    updated_at: UtcDatetime
