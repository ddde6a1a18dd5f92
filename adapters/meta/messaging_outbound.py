"""Messenger and Instagram sends through the Send API, and downloads of their CDN attachments."""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.meta.graph import access_token, api_base, download, post_json
from engine.errors import InvalidPayloadError
from engine.events import (
    ChannelConnection,
    Media,
    MediaContent,
    MessageType,
    OutboundMessage,
    SendResult,
)

log = logging.getLogger(__name__)

_ATTACHMENT_TYPES: dict[MessageType, str] = {
    MessageType.IMAGE: "image",
    MessageType.STICKER: "image",
    MessageType.VIDEO: "video",
    MessageType.AUDIO: "audio",
    MessageType.VOICE: "audio",
    MessageType.DOCUMENT: "file",
}


class _SendAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message_id: str = Field(min_length=1)


def _content(message: OutboundMessage) -> dict[str, object]:
    if message.type is MessageType.TEXT:
        if not message.body:
            raise InvalidPayloadError(f"outbound text message {message.message_id} has no body")
        return {"text": message.body}
    kind = _ATTACHMENT_TYPES.get(message.type)
    if kind is None:
        raise InvalidPayloadError(f"messenger/instagram cannot send {message.type} messages")
    if not message.media_url:
        raise InvalidPayloadError(f"outbound {kind} message {message.message_id} has no media_url")
    if message.body:
        # The Send API has no captions; the caller must send the text as its own message.
        log.info("caption not sent", extra={"message_id": message.message_id})
    # is_reusable false: each send is a one-off, so Meta need not keep an attachment id for us.
    payload = {"url": message.media_url, "is_reusable": False}
    return {"attachment": {"type": kind, "payload": payload}}


def message_body(message: OutboundMessage) -> dict[str, object]:
    """The Send API's JSON for one outbound message (a reply inside the 24-hour window)."""
    body: dict[str, object] = {
        "recipient": {"id": message.recipient},
        "messaging_type": "RESPONSE",
        "message": _content(message),
    }
    if message.quoted_provider_message_id:
        body["reply_to"] = {"mid": message.quoted_provider_message_id}
    return body


class MessagingOutbound:
    """Outbound side of Messenger and Instagram: POST {base}/{external_id}/messages.

    The channel's external_id is the Page id (Messenger) or Instagram account id; the token is
    the Page access token. Raises only engine errors (see adapters.meta.graph).
    """

    def send(
        self, message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client
    ) -> SendResult:
        body = message_body(message)
        answer = post_json(
            http,
            f"{api_base(channel)}/{quote(channel.external_id, safe='')}/messages",
            token=access_token(channel),
            body=body,
            response_model=_SendAnswer,
        )
        return SendResult(provider_message_id=answer.message_id)

    def fetch_media(
        self, media: Media, *, channel: ChannelConnection, http: httpx.Client
    ) -> MediaContent:
        if not media.url:
            raise InvalidPayloadError("messenger/instagram media has no url")
        # Attachment URLs are public, expiring CDN links: no token goes to them.
        data, content_type = download(http, media.url, token=None)
        return MediaContent(
            data=data, mime_type=media.mime_type or content_type, filename=media.filename
        )
