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
    """Per-channel credentials. Never logged; never returned by the API.

    Which are used depends on the channel type: Meta channels (access_token, app_secret,
    verify_token), Telegram (bot_token, webhook_secret), Twilio (auth_token), e-mail
    (signing_key for Mailgun, webhook_secret for SendGrid's basic auth, smtp_password).
    """

    access_token: str | None = None
    app_secret: str | None = None
    verify_token: str | None = None
    bot_token: str | None = None
    webhook_secret: str | None = None
    auth_token: str | None = None
    signing_key: str | None = None
    smtp_password: str | None = None


class ChannelConfig(Frozen):
    """Non-secret per-channel settings (what `channel create --config` accepts, minus secrets)."""

    api_base_url: str | None = None
    account_sid: str | None = None
    from_address: str | None = None
    inbound_provider: Literal["mailgun", "sendgrid"] | None = None
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_starttls: bool = False
    rate_per_s: float | None = Field(default=None, gt=0, le=10_000)
    burst: int | None = Field(default=None, ge=1, le=100_000)


class ChannelConnection(Frozen):
    """Everything an adapter needs to talk to a provider for one channel."""

    id: int
    tenant_id: int
    type: ChannelType
    external_id: str
    config: ChannelConfig = ChannelConfig()
    secrets: ChannelSecrets = ChannelSecrets()


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
    STORY_MENTION = "story_mention"
    TEMPLATE = "template"
    EMAIL = "email"
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
    # A group chat is one contact and one ticket; `author` is the member who wrote.
    is_group: bool = False
    author: Sender | None = None
    # E-mail: the subject, and Message-IDs of earlier mails in the thread (References).
    subject: str | None = None
    thread_ids: tuple[str, ...] = ()
    # Instagram story replies/mentions point at the story.
    story_url: str | None = None


class MessageEdit(Frozen):
    """The sender changed the text of an earlier message."""

    kind: Literal["edit"] = "edit"
    provider_message_id: str = Field(min_length=1, max_length=200)
    provider_timestamp: datetime
    sender: Sender
    body: str | None = None


class MessageDelete(Frozen):
    """The sender unsent / deleted an earlier message."""

    kind: Literal["delete"] = "delete"
    provider_message_id: str = Field(min_length=1, max_length=200)
    provider_timestamp: datetime
    sender: Sender


class Receipt(Frozen):
    """Delivered/read news by watermark (every message we sent up to then) or by ids."""

    kind: Literal["receipt"] = "receipt"
    sender: Sender
    provider_timestamp: datetime
    status: DeliveryStatus
    watermark: datetime | None = None
    provider_message_ids: tuple[str, ...] = ()


class ContactChange(Frozen):
    """The contact blocked/unblocked us or opted out/in (STOP/START)."""

    kind: Literal["contact_change"] = "contact_change"
    sender: Sender
    provider_timestamp: datetime
    unreachable: bool | None = None
    opted_out: bool | None = None


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
    InboundMessage
    | Reaction
    | StatusUpdate
    | MessageEdit
    | MessageDelete
    | Receipt
    | ContactChange
    | ProviderNotice
    | MalformedEvent,
    Field(discriminator="kind"),
]


class WebhookRequest(Frozen):
    """A provider's HTTP request as the adapter sees it: raw bytes, never re-serialised."""

    body: bytes
    headers: dict[str, str] = Field(description="header names lower-cased")
    url: str = Field(description="the full public URL the provider called (Twilio signs it)")
    content_type: str = "application/json"

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Template(Frozen):
    """A pre-approved provider template (WhatsApp) with positional body parameters."""

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="en_US", min_length=2, max_length=15)
    parameters: tuple[str, ...] = ()


def template_refusal(channel_type: str) -> str | None:
    """Why a template cannot go out on a channel of this type; None on WhatsApp, the only
    provider with pre-approved templates."""
    if channel_type == ChannelType.WHATSAPP:
        return None
    return f"templates are sent on WhatsApp channels only; this channel is {channel_type}"


class OutboundMessage(Frozen):
    """One message to send, as the deliver stage hands it to an adapter."""

    message_id: int
    tenant_id: int
    channel_id: int
    recipient: str = Field(min_length=1, description="the provider's address of the contact")
    type: MessageType
    body: str | None = None
    media_url: str | None = None
    filename: str | None = None
    quoted_provider_message_id: str | None = None
    template: Template | None = None
    subject: str | None = None
    thread_ids: tuple[str, ...] = ()


class SendResult(Frozen):
    provider_message_id: str = Field(min_length=1)


class MediaContent(Frozen):
    """Downloaded bytes of an inbound media item."""

    data: bytes
    mime_type: str | None = None
    filename: str | None = None
