"""Messenger and Instagram webhook payloads (`entry[].messaging[]`), ignoring unknown fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def unix_ms(value: object) -> datetime:
    # Messenger and Instagram timestamps are unix milliseconds; pydantic's own coercion would
    # also accept ISO strings and guess the unit from the magnitude.
    if type(value) is int or (isinstance(value, str) and value.isascii() and value.isdigit()):
        try:
            return _EPOCH + timedelta(milliseconds=int(value))
        except OverflowError:
            raise ValueError("timestamp out of range") from None
    raise ValueError("expected unix milliseconds")


def _as_list(value: object) -> object:
    # Some deliveries carry one attachment as an object instead of a one-item list.
    return [value] if isinstance(value, dict) else value


UnixMs = Annotated[datetime, BeforeValidator(unix_ms)]
_Id = Annotated[str, Field(min_length=1, max_length=200)]


class Provider(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Envelope(Provider):
    object: str
    entry: list[Any]


class Entry(Provider):
    id: _Id
    # Only a fallback clock (deliveries carry no timestamp); a bad one must not lose the entry.
    time: Any = None
    messaging: list[Any] = []
    changes: list[Any] = []


class Change(Provider):
    field: str


class Party(Provider):
    id: _Id


class AttachmentPayload(Provider):
    url: str | None = None
    title: str | None = None
    sticker_id: int | str | None = None


class Attachment(Provider):
    type: str
    payload: AttachmentPayload = AttachmentPayload()


class QuickReply(Provider):
    payload: str


class Story(Provider):
    url: str | None = None
    id: str | None = None


class ReplyTo(Provider):
    mid: str | None = None
    story: Story | None = None


class AdsContext(Provider):
    ad_title: str | None = None
    photo_url: str | None = None
    video_url: str | None = None
    post_id: str | None = None


class ReferralBlock(Provider):
    ref: str | None = None
    source: str | None = None
    type: str | None = None
    ad_id: str | None = None
    referer_uri: str | None = None
    ads_context_data: AdsContext | None = None


class MessageBlock(Provider):
    mid: _Id
    text: str | None = None
    attachments: Annotated[list[Attachment], BeforeValidator(_as_list)] = []
    quick_reply: QuickReply | None = None
    reply_to: ReplyTo | None = None
    referral: ReferralBlock | None = None
    sticker_id: int | str | None = None
    is_echo: bool = False
    is_deleted: bool = False
    is_unsupported: bool = False


class MessageEditBlock(Provider):
    mid: _Id
    text: str | None = None
    num_edit: int | None = None


class Postback(Provider):
    mid: _Id | None = None
    title: str | None = None
    payload: str | None = None
    referral: ReferralBlock | None = None


class ReactionBlock(Provider):
    mid: _Id
    action: str
    reaction: str | None = None
    emoji: str | None = None


class Read(Provider):
    watermark: UnixMs | None = None
    mid: _Id | None = None


class Delivery(Provider):
    mids: list[_Id] = []
    watermark: UnixMs | None = None


class Messaging(Provider):
    """One item of `entry[].messaging[]`; exactly one of the optional blocks is expected."""

    sender: Party
    recipient: Party | None = None
    timestamp: UnixMs | None = None
    message: MessageBlock | None = None
    message_edit: MessageEditBlock | None = None
    postback: Postback | None = None
    reaction: ReactionBlock | None = None
    read: Read | None = None
    delivery: Delivery | None = None
    referral: ReferralBlock | None = None
