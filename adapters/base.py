"""The contracts every channel adapter fulfils: inbound (webhooks) and outbound (sends)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import httpx

from engine.events import (
    ChannelConnection,
    ChannelSecrets,
    ChannelType,
    InboundEvent,
    Media,
    MediaContent,
    OutboundMessage,
    SendResult,
    WebhookRequest,
)

__all__ = ["ChannelAdapter", "ChannelSecrets", "InboundAdapter", "OutboundAdapter"]


class InboundAdapter(Protocol):
    """Turns one provider's webhooks into canonical events."""

    channel_type: ChannelType

    def verify(self, request: WebhookRequest, secrets: ChannelSecrets) -> None:
        """Check the provider's signature (or secret token) over the raw request.

        Raises SignatureMismatchError when it is missing or wrong. Runs before any parsing.
        """
        ...

    def address_ids(self, request: WebhookRequest) -> set[str] | None:
        """The provider addresses (phone_number_id, page id, Twilio number, inbound e-mail
        address…) this verified request is for; None when the URL's channel is the only one
        it can be for (Telegram: one bot per URL).

        Raises InvalidPayloadError when the body is not of the provider's envelope shape.
        """
        ...

    def dedupe_key(self, request: WebhookRequest) -> str:
        """A key equal for every redelivery of the same webhook (provider event id if any)."""
        ...

    def parse(self, body: bytes, *, address_id: str, content_type: str) -> Sequence[InboundEvent]:
        """Canonical events of `body` addressed to `address_id`, in document order.

        Never raises for a malformed part: that part becomes a MalformedEvent with its reason,
        so one bad entry cannot sink its neighbours. Pure: no I/O.
        """
        ...


class OutboundAdapter(Protocol):
    """Sends for one provider and translates its failures at the edge."""

    channel_type: ChannelType

    def send(
        self, message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client
    ) -> SendResult:
        """Deliver one message through the provider's API (base URL from channel.config).

        Raises RateLimitedError (with the provider's retry-after as delay_ms),
        ProviderUnavailableError (timeouts, 5xx), ProviderRejectedError (with the provider's
        error code) or RecipientMovedError. No httpx exception escapes.
        """
        ...

    def fetch_media(
        self, media: Media, *, channel: ChannelConnection, http: httpx.Client
    ) -> MediaContent:
        """Download an inbound media item's bytes. Same error translation as send."""
        ...


@runtime_checkable
class MessageEditor(Protocol):
    """A provider that lets a sent message be changed afterwards (Telegram does; most don't).

    Same error translation as send. `body` is the new text, or the new caption of a media
    message (`message_type` says which).
    """

    def edit_message(
        self,
        provider_message_id: str,
        *,
        body: str,
        message_type: str,
        channel: ChannelConnection,
        http: httpx.Client,
    ) -> None: ...

    def delete_message(
        self, provider_message_id: str, *, channel: ChannelConnection, http: httpx.Client
    ) -> None: ...


class ChannelAdapter(InboundAdapter, OutboundAdapter, Protocol):
    """A whole channel: what the registry holds."""
