"""WhatsApp Cloud API sends: messages, read receipts and media downloads over the Graph API."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.meta.graph import access_token, api_base, download, get_json, post_json
from engine.errors import InvalidPayloadError
from engine.events import (
    ChannelConnection,
    Media,
    MediaContent,
    MessageType,
    OutboundMessage,
    SendResult,
    Template,
)

# Our message types → the Cloud API's media object names; a voice note is an audio message.
_MEDIA_TYPES: dict[MessageType, str] = {
    MessageType.IMAGE: "image",
    MessageType.VIDEO: "video",
    MessageType.AUDIO: "audio",
    MessageType.VOICE: "audio",
    MessageType.DOCUMENT: "document",
    MessageType.STICKER: "sticker",
}
# The Cloud API rejects a caption on audio and stickers.
_CAPTIONED = frozenset({"image", "video", "document"})


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _SentMessage(_Answer):
    id: str = Field(min_length=1)


class _SendAnswer(_Answer):
    messages: list[_SentMessage] = Field(min_length=1)


class _StatusAnswer(_Answer):
    success: bool


class _MediaAnswer(_Answer):
    url: str = Field(min_length=1)
    mime_type: str | None = None


def _text(message: OutboundMessage) -> dict[str, object]:
    if not message.body:
        raise InvalidPayloadError(f"outbound text message {message.message_id} has no body")
    # Link previews fetch third-party pages on the customer's phone; agents opt in, not us.
    return {"type": "text", "text": {"body": message.body, "preview_url": False}}


def _media(message: OutboundMessage, kind: str) -> dict[str, object]:
    if not message.media_url:
        raise InvalidPayloadError(f"outbound {kind} message {message.message_id} has no media_url")
    block: dict[str, object] = {"link": message.media_url}
    if message.body and kind in _CAPTIONED:
        block["caption"] = message.body
    if message.filename and kind == "document":
        block["filename"] = message.filename
    return {"type": kind, kind: block}


def _template(template: Template) -> dict[str, object]:
    block: dict[str, object] = {"name": template.name, "language": {"code": template.language}}
    if template.parameters:
        parameters = [{"type": "text", "text": value} for value in template.parameters]
        block["components"] = [{"type": "body", "parameters": parameters}]
    return {"type": "template", "template": block}


def _content(message: OutboundMessage) -> dict[str, object]:
    if message.type is MessageType.TEXT:
        return _text(message)
    if message.type in _MEDIA_TYPES:
        return _media(message, _MEDIA_TYPES[message.type])
    if message.type is MessageType.TEMPLATE:
        if message.template is None:
            raise InvalidPayloadError(f"outbound template message {message.message_id} has none")
        return _template(message.template)
    raise InvalidPayloadError(f"whatsapp cannot send {message.type} messages")


def message_body(message: OutboundMessage) -> dict[str, object]:
    """The Cloud API's JSON for one outbound message."""
    body: dict[str, object] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.recipient,
        **_content(message),
    }
    if message.quoted_provider_message_id:
        body["context"] = {"message_id": message.quoted_provider_message_id}
    return body


def _messages_url(channel: ChannelConnection) -> str:
    return f"{api_base(channel)}/{quote(channel.external_id, safe='')}/messages"


class WhatsAppOutbound:
    """Outbound side of the WhatsApp Cloud API; the channel's external_id is its phone_number_id.

    Every method raises only engine errors (see adapters.meta.graph for the classification).
    """

    def send(
        self, message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client
    ) -> SendResult:
        body = message_body(message)
        answer = post_json(
            http,
            _messages_url(channel),
            token=access_token(channel),
            body=body,
            response_model=_SendAnswer,
        )
        return SendResult(provider_message_id=answer.messages[0].id)

    def mark_read(
        self, provider_message_id: str, *, channel: ChannelConnection, http: httpx.Client
    ) -> None:
        """Tell the customer their message was read (blue ticks)."""
        body = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": provider_message_id,
        }
        post_json(
            http,
            _messages_url(channel),
            token=access_token(channel),
            body=body,
            response_model=_StatusAnswer,
        )

    def fetch_media(
        self, media: Media, *, channel: ChannelConnection, http: httpx.Client
    ) -> MediaContent:
        if not media.provider_media_id:
            raise InvalidPayloadError("whatsapp media has no provider_media_id")
        token = access_token(channel)
        # phone_number_id makes Meta refuse media that belongs to another of our numbers.
        answer = get_json(
            http,
            f"{api_base(channel)}/{quote(media.provider_media_id, safe='')}",
            token=token,
            params={"phone_number_id": channel.external_id},
            response_model=_MediaAnswer,
        )
        # The media URL is on Meta's lookaside host and needs the same Bearer token.
        data, content_type = download(http, answer.url, token=token)
        return MediaContent(
            data=data,
            mime_type=answer.mime_type or media.mime_type or content_type,
            filename=media.filename,
        )
