"""What one Telegram Message carries (text, media, place, contact card), as canonical parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.telegram.payloads import FileBlock, Message
from engine.events import Location, Media, MessageType, SharedContact

NAME_MAX_CHARS = 200  # Sender.name's limit; Telegram titles and names fit, but never fail on it

# Service messages (joins, pins, title changes…) are chat housekeeping, not customer words:
# they must not open tickets or count as unread.
SERVICE_FIELDS = (
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "successful_payment",
    "refunded_payment",
    "users_shared",
    "chat_shared",
    "connected_website",
    "write_access_allowed",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "giveaway_created",
    "giveaway_completed",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "web_app_data",
)
# Customer content we receive but cannot represent; named so the agent sees what it was.
_UNSUPPORTED_CONTENT = (
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
    "paid_media",
    "giveaway",
    "giveaway_winners",
    "checklist",
)


@dataclass(frozen=True)
class Content:
    """The canonical parts of one message's content, before sender and ids are added."""

    type: MessageType
    body: str | None = None
    media: tuple[Media, ...] = ()
    location: Location | None = None
    contacts: tuple[SharedContact, ...] = ()
    error_title: str | None = None


def display_name(*parts: str | None) -> str | None:
    """Non-empty parts joined by a space, clipped to what Sender.name holds; None if empty."""
    return " ".join(p for p in parts if p).strip()[:NAME_MAX_CHARS] or None


def _file(kind: MessageType, block: FileBlock, caption: str | None, mime: str | None) -> Content:
    media = Media(
        type=kind,
        mime_type=block.mime_type or mime,
        provider_media_id=block.file_id,
        filename=block.file_name,
        caption=caption,
    )
    return Content(kind, body=caption, media=(media,))


def _sticker_mime(message: Message) -> str:
    sticker = message.sticker
    if sticker is not None and sticker.is_animated:
        return "application/x-tgsticker"
    return "video/webm" if sticker is not None and sticker.is_video else "image/webp"


def _media(message: Message) -> Content | None:
    caption = message.caption
    if message.photo:
        # Telegram sends every size it rendered; the agent wants the sharpest.
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        media = Media(
            type=MessageType.IMAGE,
            mime_type="image/jpeg",  # Telegram re-encodes every photo as JPEG
            provider_media_id=largest.file_id,
            caption=caption,
        )
        return Content(MessageType.IMAGE, body=caption, media=(media,))
    files = (
        # An animation also arrives as `document` for old clients; it must win over it.
        (message.animation, MessageType.VIDEO, None),
        (message.video, MessageType.VIDEO, None),
        (message.video_note, MessageType.VIDEO, "video/mp4"),
        (message.voice, MessageType.VOICE, None),
        (message.audio, MessageType.AUDIO, None),
        (message.document, MessageType.DOCUMENT, None),
    )
    for block, kind, mime in files:
        if block is not None:
            return _file(kind, block, caption, mime)
    if message.sticker is not None:
        media = Media(
            type=MessageType.STICKER,
            mime_type=_sticker_mime(message),
            provider_media_id=message.sticker.file_id,
        )
        return Content(MessageType.STICKER, media=(media,))
    return None


def message_content(message: Message, raw: dict[str, Any]) -> Content:
    """What `message` says; `raw` names content this adapter has no model for."""
    media = _media(message)
    if media is not None:
        return media
    if message.venue is not None:  # a venue also carries `location`; it adds name and address
        venue = message.venue
        place = Location(
            latitude=venue.location.latitude,
            longitude=venue.location.longitude,
            name=venue.title,
            address=venue.address,
        )
        return Content(MessageType.LOCATION, location=place)
    if message.location is not None:
        point = message.location
        spot = Location(latitude=point.latitude, longitude=point.longitude)
        return Content(MessageType.LOCATION, location=spot)
    if message.contact is not None:
        card = message.contact
        shared = SharedContact(
            name=display_name(card.first_name, card.last_name) or card.phone_number,
            phones=(card.phone_number,),
        )
        return Content(MessageType.CONTACTS, contacts=(shared,))
    if message.text is not None:
        # Entities (bold, links, mentions) only style the text; the plain text is the message.
        return Content(MessageType.TEXT, body=message.text)
    field = next((f for f in _UNSUPPORTED_CONTENT if f in raw), None)
    title = f"unsupported content {field}" if field else "unknown content"
    return Content(MessageType.UNSUPPORTED, body=message.caption, error_title=title)


def service_field(raw: dict[str, Any]) -> str | None:
    """The field that makes `raw` a service message, if it is one."""
    return next((f for f in SERVICE_FIELDS if f in raw), None)
