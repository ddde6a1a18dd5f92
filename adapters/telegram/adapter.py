"""Telegram Bot API adapter: secret-token webhooks in, Bot API sends out."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import httpx

from adapters.base import ChannelSecrets
from adapters.telegram import outbound
from adapters.telegram.inbound import dedupe_key, parse_update
from engine.errors import SignatureMismatchError
from engine.events import (
    ChannelConnection,
    ChannelType,
    InboundEvent,
    Media,
    MediaContent,
    OutboundMessage,
    SendResult,
    WebhookRequest,
)


class TelegramAdapter:
    """One bot per channel; its webhook URL names the channel, so no address is needed."""

    channel_type = ChannelType.TELEGRAM

    def verify(self, request: WebhookRequest, secrets: ChannelSecrets) -> None:
        # Telegram signs nothing: it echoes the secret_token given to setWebhook.
        if not secrets.webhook_secret:
            raise SignatureMismatchError("no webhook secret configured for this channel")
        header = request.header("x-telegram-bot-api-secret-token")
        if header is None:
            raise SignatureMismatchError("missing X-Telegram-Bot-Api-Secret-Token header")
        # Bytes, not str: compare_digest refuses non-ASCII str, and the header is untrusted.
        if not hmac.compare_digest(header.encode(), secrets.webhook_secret.encode()):
            raise SignatureMismatchError("X-Telegram-Bot-Api-Secret-Token does not match")

    def address_ids(self, request: WebhookRequest) -> set[str] | None:
        return None

    def dedupe_key(self, request: WebhookRequest) -> str:
        return dedupe_key(request.body)

    def parse(
        self, body: bytes, *, address_id: str, content_type: str = "application/json"
    ) -> Sequence[InboundEvent]:
        return parse_update(body)

    def send(
        self, message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client
    ) -> SendResult:
        return outbound.send(message, channel=channel, http=http)

    def fetch_media(
        self, media: Media, *, channel: ChannelConnection, http: httpx.Client
    ) -> MediaContent:
        return outbound.fetch_media(media, channel=channel, http=http)

    def edit_message(
        self,
        provider_message_id: str,
        *,
        body: str,
        message_type: str,
        channel: ChannelConnection,
        http: httpx.Client,
    ) -> None:
        outbound.edit_message(
            provider_message_id, body=body, message_type=message_type, channel=channel, http=http
        )

    def delete_message(
        self, provider_message_id: str, *, channel: ChannelConnection, http: httpx.Client
    ) -> None:
        outbound.delete_message(provider_message_id, channel=channel, http=http)


ADAPTER = TelegramAdapter()
