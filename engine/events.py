"""Canonical events: what every channel adapter turns a provider webhook into."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    """Base of internal models: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelType(StrEnum):
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    TELEGRAM = "telegram"
    SMS = "sms"
    EMAIL = "email"


class ChannelSecrets(Frozen):
    """Per-channel credentials. Never logged; never returned by the API."""

    access_token: str | None = None
    app_secret: str | None = None
    verify_token: str | None = None


class MessageType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VOICE = "voice"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    UNSUPPORTED = "unsupported"


class DeliveryStatus(StrEnum):
    """Outbound delivery status; RANK orders them so updates only move forward."""

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


STATUS_RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
    DeliveryStatus.FAILED: 4,
}


class Sender(Frozen):
    """Who sent an inbound event, as the channel identifies them."""

    external_id: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)


class Media(Frozen):
    type: MessageType
    mime_type: str | None = None
    provider_media_id: str | None = None
    url: str | None = None
    filename: str | None = None
    caption: str | None = None
    sha256: str | None = None


class Location(Frozen):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = None
    address: str | None = None
    url: str | None = None


class SharedContact(Frozen):
    name: str
    phones: tuple[str, ...] = ()


class Referral(Frozen):
    """Click-to-chat ad or post the customer came from."""

    source_type: str | None = None
    source_id: str | None = None
    source_url: str | None = None
    headline: str | None = None
    body: str | None = None


class InboundMessage(Frozen):
    kind: Literal["message"] = "message"
    provider_message_id: str = Field(min_length=1, max_length=200)
    provider_timestamp: datetime
    sender: Sender
    type: MessageType
    body: str | None = None
    media: tuple[Media, ...] = ()
    location: Location | None = None
    contacts: tuple[SharedContact, ...] = ()
    quoted_provider_message_id: str | None = None
    reply_id: str | None = None
    referral: Referral | None = None
    error_code: int | None = None
    error_title: str | None = None


class Reaction(Frozen):
    """An emoji on an earlier message; `emoji=None` removes the sender's reaction."""

    kind: Literal["reaction"] = "reaction"
    provider_message_id: str = Field(min_length=1, max_length=200)
    provider_timestamp: datetime
    sender: Sender
    target_provider_message_id: str = Field(min_length=1, max_length=200)
    emoji: str | None = None


class StatusUpdate(Frozen):
    """Delivery news about a message we sent."""

    kind: Literal["status"] = "status"
    provider_message_id: str = Field(min_length=1, max_length=200)
    provider_timestamp: datetime
    recipient_id: str | None = None
    status: DeliveryStatus
    error_code: int | None = None
    error_title: str | None = None


class ProviderNotice(Frozen):
    """Something the provider told us that is not about one conversation (e.g. `errors`)."""

    kind: Literal["notice"] = "notice"
    code: int | None = None
    title: str


class MalformedEvent(Frozen):
    """A part of a webhook that could not be understood; becomes a dead letter."""

    kind: Literal["malformed"] = "malformed"
    reason: str
    fragment: str = Field(description="the offending JSON fragment, for the operator")


InboundEvent = Annotated[
    InboundMessage | Reaction | StatusUpdate | ProviderNotice | MalformedEvent,
    Field(discriminator="kind"),
]
