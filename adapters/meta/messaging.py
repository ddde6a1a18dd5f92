"""Messenger and Instagram webhooks (`entry[].messaging[]`): verify, address, dedupe, parse."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from adapters.meta.messaging_events import (
    FRAGMENT_MAX_CHARS,
    describe,
    entry_time,
    malformed,
    parse_item,
)
from adapters.meta.messaging_outbound import MessagingOutbound
from adapters.meta.messaging_payloads import Change, Entry, Envelope
from adapters.meta.signature import verify_hub_signature
from engine.errors import InvalidPayloadError
from engine.events import (
    ChannelSecrets,
    ChannelType,
    InboundEvent,
    MalformedEvent,
    ProviderNotice,
    WebhookRequest,
)


def _parse_change(raw: Any) -> InboundEvent:
    # Instagram also sends comments and mentions as `changes`; they are not conversations.
    try:
        return ProviderNotice(title=f"unsupported field {Change.model_validate(raw).field}")
    except ValidationError as exc:
        return malformed(describe("change", exc), raw)


def _parse_entry(entry: Entry) -> list[InboundEvent]:
    fallback = entry_time(entry.time)
    return [
        *(parse_item(item, fallback=fallback) for item in entry.messaging),
        *(_parse_change(change) for change in entry.changes),
    ]


class MetaMessagingAdapter(MessagingOutbound):
    """A Messenger-shaped channel; one channel per `entry[].id` (Page id or IG account id)."""

    channel_type: ChannelType
    webhook_object: str  # the envelope's `object`: "page" or "instagram"

    def _envelope(self, body: bytes) -> Envelope:
        # `from None`: pydantic's message quotes the input, and bodies must not reach the logs.
        try:
            envelope = Envelope.model_validate(orjson.loads(body))
        except orjson.JSONDecodeError:
            raise InvalidPayloadError("body is not JSON") from None
        except ValidationError:
            envelope = None
        if envelope is None or envelope.object != self.webhook_object:
            raise InvalidPayloadError(f"not a Meta {self.webhook_object!r} webhook")
        return envelope

    def _entries(self, envelope: Envelope) -> Iterator[Entry]:
        """Entries naming an account; one naming none belongs to no channel."""
        for raw in envelope.entry:
            try:
                yield Entry.model_validate(raw)
            except ValidationError:
                continue

    def verify(self, request: WebhookRequest, secrets: ChannelSecrets) -> None:
        verify_hub_signature(request, secrets)

    def address_ids(self, request: WebhookRequest) -> set[str] | None:
        return {entry.id for entry in self._entries(self._envelope(request.body))}

    def dedupe_key(self, request: WebhookRequest) -> str:
        # Meta redelivers the same bytes; per-message uniqueness is the database's job.
        return "sha256:" + hashlib.sha256(request.body).hexdigest()

    def parse(
        self, body: bytes, *, address_id: str, content_type: str = "application/json"
    ) -> Sequence[InboundEvent]:
        try:
            envelope = self._envelope(body)
        except InvalidPayloadError as exc:
            fragment = body[:FRAGMENT_MAX_CHARS].decode("utf-8", "replace")
            return [MalformedEvent(reason=str(exc), fragment=fragment)]
        return [
            event
            for entry in self._entries(envelope)
            if entry.id == address_id
            for event in _parse_entry(entry)
        ]
