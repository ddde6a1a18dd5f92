"""Telegram Bot API Update and response objects as pydantic models that ignore unknown fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt


def unix_seconds(value: object) -> datetime:
    # Telegram sends integer unix seconds; pydantic's own coercion would also accept ISO
    # strings and read large numbers as milliseconds.
    if type(value) is not int:
        raise ValueError("expected unix seconds")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("timestamp out of range") from None


UnixTime = Annotated[datetime, BeforeValidator(unix_seconds)]


class Provider(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Update(Provider):
    update_id: StrictInt


class User(Provider):
    id: int
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None


class Chat(Provider):
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class PhotoSize(Provider):
    file_id: str = Field(min_length=1)
    width: int = 0
    height: int = 0
    file_size: int | None = None


class FileBlock(Provider):
    """Audio, Voice, Video, VideoNote, Animation and Document share these fields."""

    file_id: str = Field(min_length=1)
    file_name: str | None = None
    mime_type: str | None = None


class StickerBlock(Provider):
    file_id: str = Field(min_length=1)
    is_animated: bool = False
    is_video: bool = False
    emoji: str | None = None


class LocationBlock(Provider):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class VenueBlock(Provider):
    location: LocationBlock
    title: str | None = None
    address: str | None = None


class ContactBlock(Provider):
    phone_number: str
    first_name: str
    last_name: str | None = None


class Replied(Provider):
    message_id: int


class Message(Provider):
    message_id: int
    from_: User | None = Field(default=None, alias="from")
    sender_chat: Chat | None = None
    date: UnixTime
    edit_date: UnixTime | None = None
    chat: Chat
    reply_to_message: Replied | None = None
    text: str | None = None
    caption: str | None = None
    photo: Annotated[list[PhotoSize], Field(min_length=1)] | None = None
    animation: FileBlock | None = None
    video: FileBlock | None = None
    video_note: FileBlock | None = None
    voice: FileBlock | None = None
    audio: FileBlock | None = None
    document: FileBlock | None = None
    sticker: StickerBlock | None = None
    venue: VenueBlock | None = None
    location: LocationBlock | None = None
    contact: ContactBlock | None = None


class CallbackMessage(Provider):
    """A Message or InaccessibleMessage (date 0) the pressed button was attached to."""

    message_id: int
    chat: Chat
    date: UnixTime
    edit_date: UnixTime | None = None


class CallbackQuery(Provider):
    id: str = Field(min_length=1)
    from_: User = Field(alias="from")
    message: CallbackMessage | None = None
    data: str | None = None


class ChatMember(Provider):
    status: str


class ChatMemberUpdated(Provider):
    chat: Chat
    from_: User = Field(alias="from")
    date: UnixTime
    new_chat_member: ChatMember


class ResponseParameters(Provider):
    migrate_to_chat_id: int | None = None
    retry_after: int | None = None


class ApiResponse(Provider):
    """Every Bot API answer: {"ok": true, "result": …} or {"ok": false, "error_code": …}."""

    ok: bool
    result: Any = None
    error_code: int | None = None
    description: str | None = None
    parameters: ResponseParameters | None = None


class SentChat(Provider):
    id: int


class SentMessage(Provider):
    message_id: int
    chat: SentChat


class File(Provider):
    file_id: str
    file_path: str | None = None
