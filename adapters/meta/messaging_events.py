"""One Messenger/Instagram `messaging[]` item → one canonical event; pure, never raises."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from adapters.fragments import fragment_text
from adapters.meta.messaging_payloads import (
    AdsContext,
    Delivery,
    MessageBlock,
    Messaging,
    Postback,
    ReactionBlock,
    Read,
    ReferralBlock,
    unix_ms,
)
from engine.events import (
    DeliveryStatus,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    Media,
    MessageDelete,
    MessageEdit,
    MessageType,
    ProviderNotice,
    Reaction,
    Receipt,
    Referral,
    Sender,
    StatusUpdate,
)

FRAGMENT_MAX_CHARS = 2000
_MEDIA_KINDS: dict[str, MessageType] = {
    "image": MessageType.IMAGE,
    "video": MessageType.VIDEO,
    "audio": MessageType.AUDIO,
    "file": MessageType.DOCUMENT,
}
# Reaction names Meta documents, for the rare webhook that names the reaction but sends no emoji.
_REACTION_EMOJI: dict[str, str] = {
    "love": "❤️",
    "like": "👍",
    "dislike": "👎",
    "smile": "😆",
    "laugh": "😆",
    "wow": "😮",
    "sad": "😢",
    "angry": "😠",
}
_ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})


class _MissingFieldError(Exception):
    """A block the event needs is absent or empty; the argument is its path."""


@dataclass(frozen=True)
class _Content:
    type: MessageType
    body: str | None = None
    media: tuple[Media, ...] = ()
    story_url: str | None = None
    error_title: str | None = None


def synthetic_id(kind: str, *parts: str) -> str:
    """A stable id for an event Meta gives none: equal on every redelivery of the same event."""
    return f"{kind}:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def entry_time(value: object) -> datetime | None:
    try:
        return unix_ms(value)
    except ValueError:
        return None


def _referral(block: ReferralBlock) -> Referral:
    ads = block.ads_context_data or AdsContext()
    return Referral(
        source_type=block.source.lower() if block.source else None,
        source_id=block.ad_id or block.ref,
        source_url=block.referer_uri or ads.photo_url or ads.video_url,
        headline=ads.ad_title,
    )


def _attachments(message: MessageBlock) -> tuple[list[Media], list[str], str | None, list[str]]:
    """(media files, shared links, mentioned story URL, kinds we could not use)."""
    media: list[Media] = []
    links: list[str] = []
    story_url: str | None = None
    unknown: list[str] = []
    for position, attachment in enumerate(message.attachments):
        url = attachment.payload.url
        if attachment.type == "story_mention":
            story_url = url
        elif attachment.type in _MEDIA_KINDS:
            if not url:
                raise _MissingFieldError(f"message.attachments.{position}.payload.url")
            sticker = attachment.type == "image" and attachment.payload.sticker_id is not None
            kind = MessageType.STICKER if sticker else _MEDIA_KINDS[attachment.type]
            media.append(Media(type=kind, url=url))
        elif url:
            # Shares, reels, posts, templates: a link to Meta content, readable by an agent.
            links.append(url)
        else:
            unknown.append(attachment.type)
    return media, links, story_url, unknown


def _content(message: MessageBlock) -> _Content:
    media, links, story_url, unknown = _attachments(message)
    is_mention = any(a.type == "story_mention" for a in message.attachments)
    body = "\n".join(part for part in (message.text, *links) if part) or None
    if story_url is None and message.reply_to and message.reply_to.story:
        story_url = message.reply_to.story.url
    if message.is_unsupported:
        return _Content(MessageType.UNSUPPORTED, body=body, error_title="unsupported by Meta")
    if is_mention:
        return _Content(MessageType.STORY_MENTION, body=body, story_url=story_url)
    if message.quick_reply is not None:
        return _Content(MessageType.INTERACTIVE, body=body, media=tuple(media))
    if media:
        return _Content(media[0].type, body=body, media=tuple(media), story_url=story_url)
    if body:
        return _Content(MessageType.TEXT, body=body, story_url=story_url)
    title = f"unknown attachment {', '.join(unknown)}" if unknown else "empty message"
    return _Content(MessageType.UNSUPPORTED, story_url=story_url, error_title=title)


def _message(item: Messaging, message: MessageBlock, when: datetime) -> InboundEvent:
    if message.is_echo:
        # Our own page/account sent it (through us or Meta's inbox): news about an outbound one.
        recipient = item.recipient.id if item.recipient else None
        return StatusUpdate(
            provider_message_id=message.mid,
            provider_timestamp=when,
            recipient_id=recipient,
            status=DeliveryStatus.SENT,
        )
    sender = Sender(external_id=item.sender.id)
    if message.is_deleted:
        return MessageDelete(
            provider_message_id=message.mid, provider_timestamp=when, sender=sender
        )
    content = _content(message)
    reply_to = message.reply_to
    return InboundMessage(
        provider_message_id=message.mid,
        provider_timestamp=when,
        sender=sender,
        type=content.type,
        body=content.body,
        media=content.media,
        quoted_provider_message_id=reply_to.mid if reply_to else None,
        reply_id=message.quick_reply.payload if message.quick_reply else None,
        referral=_referral(message.referral) if message.referral else None,
        error_title=content.error_title,
        story_url=content.story_url,
    )


def _postback(sender: Sender, postback: Postback, when: datetime) -> InboundEvent:
    # Postbacks carry a mid since Graph v11 (Instagram) but not always on Messenger.
    parts = (sender.external_id, when.isoformat(), postback.payload or "", postback.title or "")
    mid = postback.mid or synthetic_id("postback", *parts)
    return InboundMessage(
        provider_message_id=mid,
        provider_timestamp=when,
        sender=sender,
        type=MessageType.BUTTON,
        body=postback.title,
        reply_id=postback.payload,
        referral=_referral(postback.referral) if postback.referral else None,
    )


def _reaction(sender: Sender, block: ReactionBlock, when: datetime) -> InboundEvent:
    if block.action not in ("react", "unreact"):
        return ProviderNotice(title=f"reaction action {block.action}")
    emoji: str | None = None
    if block.action == "react":
        emoji = block.emoji or _REACTION_EMOJI.get(block.reaction or "") or block.reaction
        if not emoji:
            raise _MissingFieldError("reaction.emoji")
    return Reaction(
        provider_message_id=synthetic_id(
            "reaction", sender.external_id, when.isoformat(), block.action, block.mid
        ),
        provider_timestamp=when,
        sender=sender,
        target_provider_message_id=block.mid,
        emoji=emoji,
    )


def _read(sender: Sender, read: Read, when: datetime) -> InboundEvent:
    # Messenger reports a watermark (everything up to then); Instagram names the message.
    if read.watermark is None and read.mid is None:
        raise _MissingFieldError("read.watermark")
    return Receipt(
        sender=sender,
        provider_timestamp=when,
        status=DeliveryStatus.READ,
        watermark=read.watermark,
        provider_message_ids=(read.mid,) if read.mid else (),
    )


def _delivery(sender: Sender, delivery: Delivery, when: datetime) -> InboundEvent:
    if delivery.watermark is None and not delivery.mids:
        raise _MissingFieldError("delivery.watermark")
    return Receipt(
        sender=sender,
        provider_timestamp=when,
        status=DeliveryStatus.DELIVERED,
        watermark=delivery.watermark,
        provider_message_ids=tuple(delivery.mids),
    )


def _standalone_referral(sender: Sender, block: ReferralBlock, when: datetime) -> InboundEvent:
    # The customer opened the thread from an ad or link without writing: the ad attribution
    # is worth a message of its own in the ticket.
    key = block.ad_id or block.ref or ""
    return InboundMessage(
        provider_message_id=synthetic_id("referral", sender.external_id, when.isoformat(), key),
        provider_timestamp=when,
        sender=sender,
        type=MessageType.TEXT,
        referral=_referral(block),
    )


def _when(item: Messaging, fallback: datetime | None) -> datetime:
    # Messenger's delivery events carry no timestamp: their watermark is the next best clock.
    when = item.timestamp or (item.delivery.watermark if item.delivery else None) or fallback
    if when is None:
        raise _MissingFieldError("timestamp")
    return when


def _parse(raw: Any, fallback: datetime | None) -> InboundEvent:
    item = Messaging.model_validate(raw)
    when = _when(item, fallback)
    sender = Sender(external_id=item.sender.id)
    if item.message is not None:
        return _message(item, item.message, when)
    if item.message_edit is not None:
        edit = item.message_edit
        return MessageEdit(
            provider_message_id=edit.mid, provider_timestamp=when, sender=sender, body=edit.text
        )
    if item.postback is not None:
        return _postback(sender, item.postback, when)
    if item.reaction is not None:
        return _reaction(sender, item.reaction, when)
    if item.read is not None:
        return _read(sender, item.read, when)
    if item.delivery is not None:
        return _delivery(sender, item.delivery, when)
    if item.referral is not None:
        return _standalone_referral(sender, item.referral, when)
    keys = sorted(set(raw) - _ENVELOPE_KEYS) if isinstance(raw, dict) else []
    return ProviderNotice(title=f"unsupported messaging event {','.join(keys) or 'empty'}")


def malformed(reason: str, fragment: Any) -> MalformedEvent:
    text = fragment_text(fragment, FRAGMENT_MAX_CHARS)
    return MalformedEvent(reason=reason, fragment=text)


def describe(part: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    return part + "".join(f".{p}" for p in first["loc"]) + f": {first['msg']}"


def parse_item(raw: Any, *, fallback: datetime | None) -> InboundEvent:
    """The event of one `messaging[]` item; a shape error becomes a MalformedEvent naming it."""
    try:
        return _parse(raw, fallback)
    except _MissingFieldError as exc:
        return malformed(f"messaging.{exc}: Field required", raw)
    except ValidationError as exc:
        return malformed(describe("messaging", exc), raw)
