"""WhatsApp Cloud API webhook payloads as pydantic models that ignore unknown fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def unix_seconds(value: object) -> datetime:
    # Meta sends unix seconds as a string; pydantic's own coercion would also accept ISO
    # strings and read large numbers as milliseconds.
    try:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC)
        if type(value) is int:
            return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("timestamp out of range") from None
    raise ValueError("expected unix seconds")


_UnixTime = Annotated[datetime, BeforeValidator(unix_seconds)]


class Provider(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Envelope(Provider):
    object: Literal["whatsapp_business_account"]
    entry: list[Any]


class Change(Provider):
    field: str


class Profile(Provider):
    name: str | None = None


class Contact(Provider):
    wa_id: str | None = None
    profile: Profile | None = None


class Value(Provider):
    contacts: list[Contact] = []
    messages: list[Any] = []
    statuses: list[Any] = []
    errors: list[Any] = []


class MessagesChange(Provider):
    value: Value


class Error(Provider):
    code: int | None = None
    title: str | None = None
    message: str | None = None


class Text(Provider):
    body: str


class MediaBlock(Provider):
    id: str = Field(min_length=1)
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool = False


class LocationBlock(Provider):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = None
    address: str | None = None
    url: str | None = None


class CardName(Provider):
    formatted_name: str


class CardPhone(Provider):
    phone: str | None = None


class ContactCard(Provider):
    name: CardName
    phones: list[CardPhone] = []


class Reply(Provider):
    id: str
    title: str


class Interactive(Provider):
    type: str
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Button(Provider):
    text: str
    payload: str | None = None


class ReactionBlock(Provider):
    message_id: str
    emoji: str | None = None


class Context(Provider):
    id: str | None = None


class ReferralBlock(Provider):
    source_type: str | None = None
    source_id: str | None = None
    source_url: str | None = None
    headline: str | None = None
    body: str | None = None


class Message(Provider):
    id: str
    from_: str = Field(alias="from")
    timestamp: _UnixTime
    type: str
    context: Context | None = None
    referral: ReferralBlock | None = None
    errors: list[Error] = []
    text: Text | None = None
    image: MediaBlock | None = None
    video: MediaBlock | None = None
    audio: MediaBlock | None = None
    document: MediaBlock | None = None
    sticker: MediaBlock | None = None
    location: LocationBlock | None = None
    contacts: list[ContactCard] | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    reaction: ReactionBlock | None = None


class Status(Provider):
    id: str
    status: str
    timestamp: _UnixTime
    recipient_id: str | None = None
    errors: list[Error] = []
