"""Twilio SMS/MMS adapter: verifies X-Twilio-Signature, parses the form webhooks, sends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx
from pydantic import ValidationError

from adapters.twilio import outbound
from adapters.twilio.payloads import (
    Envelope,
    InboundSms,
    StatusCallback,
    describe,
    form_fields,
    load_envelope,
)
from adapters.twilio.signature import verify_twilio_signature
from engine.errors import InvalidPayloadError
from engine.events import (
    ChannelConnection,
    ChannelSecrets,
    ChannelType,
    ContactChange,
    DeliveryStatus,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    Media,
    MediaContent,
    MessageType,
    OutboundMessage,
    ProviderNotice,
    Sender,
    SendResult,
    StatusUpdate,
    WebhookRequest,
)

_FRAGMENT_MAX_CHARS = 2000
_STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,  # WhatsApp over Twilio
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
}
# Twilio's default opt-out handling: the whole message, trimmed, in any case.
_OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
_OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
# Advanced Opt-Out names the outcome, whatever (custom) keyword triggered it; HELP changes nothing.
_OPT_OUT_TYPES = {"STOP": True, "START": False}
_MEDIA_TYPES = {"image": MessageType.IMAGE, "video": MessageType.VIDEO, "audio": MessageType.AUDIO}


class _MissingFieldError(Exception):
    """A field NumMedia promises is absent; the argument is its name."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _malformed(reason: str, body: bytes) -> MalformedEvent:
    fragment = body[:_FRAGMENT_MAX_CHARS].decode("utf-8", "replace")[:_FRAGMENT_MAX_CHARS]
    return MalformedEvent(reason=reason, fragment=fragment)


def _media_item(url: str, content_type: str | None) -> Media:
    major = (content_type or "").partition("/")[0].lower()
    last_segment = url.rstrip("/").rpartition("/")[2]
    return Media(
        type=_MEDIA_TYPES.get(major, MessageType.DOCUMENT),
        mime_type=content_type or None,
        # The Media resource sid (ME…) ends Twilio's media URL.
        provider_media_id=last_segment if last_segment.startswith("ME") else None,
        url=url,
    )


def _media(fields: dict[str, str], count: int) -> tuple[Media, ...]:
    items = []
    for index in range(count):
        url = fields.get(f"MediaUrl{index}")
        if not url:
            raise _MissingFieldError(f"MediaUrl{index}")
        items.append(_media_item(url, fields.get(f"MediaContentType{index}")))
    return tuple(items)


def _opted_out(sms: InboundSms) -> bool | None:
    if sms.opt_out_type is not None:
        return _OPT_OUT_TYPES.get(sms.opt_out_type.upper())
    keyword = (sms.body or "").strip().upper()
    if keyword in _OPT_OUT_KEYWORDS:
        return True
    if keyword in _OPT_IN_KEYWORDS:
        return False
    return None


def _message_events(fields: dict[str, str], now: datetime) -> list[InboundEvent]:
    sms = InboundSms.model_validate(fields)
    media = _media(fields, sms.num_media)
    sender = Sender(external_id=sms.from_, phone=sms.from_)
    # Like a WhatsApp caption: with media, the text rides along as the body.
    message = InboundMessage(
        provider_message_id=sms.message_sid,
        provider_timestamp=now,
        sender=sender,
        type=media[0].type if media else MessageType.TEXT,
        body=sms.body or None,
        media=media,
    )
    opted_out = _opted_out(sms)
    if opted_out is None:
        return [message]
    return [message, ContactChange(sender=sender, provider_timestamp=now, opted_out=opted_out)]


def _status_event(fields: dict[str, str], now: datetime) -> InboundEvent:
    callback = StatusCallback.model_validate(fields)
    status = _STATUSES.get(callback.message_status.lower())
    if status is None:
        return ProviderNotice(title=f"status {callback.message_status}")
    return StatusUpdate(
        provider_message_id=callback.message_sid,
        provider_timestamp=now,
        recipient_id=callback.to,
        status=status,
        error_code=callback.error_code,
        error_title=callback.error_message,
    )


class TwilioAdapter:
    """Twilio Programmable Messaging; one channel per Twilio phone number (E.164).

    Twilio's webhooks carry no event time, so events are stamped with `clock()` when
    parsed; tests pass a fixed clock.
    """

    channel_type = ChannelType.SMS

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock

    def verify(self, request: WebhookRequest, secrets: ChannelSecrets) -> None:
        verify_twilio_signature(request, secrets)

    def address_ids(self, request: WebhookRequest) -> set[str] | None:
        return {load_envelope(request.body).address}

    def dedupe_key(self, request: WebhookRequest) -> str:
        envelope = load_envelope(request.body)
        if envelope.is_status_callback:
            # One callback per status change of a message: each is news once.
            return f"status:{envelope.message_sid}:{envelope.message_status}"
        return f"msg:{envelope.message_sid}"

    def parse(
        self,
        body: bytes,
        *,
        address_id: str,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> Sequence[InboundEvent]:
        try:
            fields = form_fields(body)
            envelope = Envelope.model_validate(fields)
        except InvalidPayloadError as exc:
            return [_malformed(str(exc), body)]
        except ValidationError as exc:
            return [_malformed(describe(exc), body)]
        if envelope.address != address_id:
            return []
        now = self._clock()
        try:
            if envelope.is_status_callback:
                return [_status_event(fields, now)]
            return _message_events(fields, now)
        except _MissingFieldError as exc:
            return [_malformed(f"{exc}: Field required", body)]
        except ValidationError as exc:
            return [_malformed(describe(exc), body)]

    def send(
        self, message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client
    ) -> SendResult:
        return outbound.send(message, channel=channel, http=http)

    def fetch_media(
        self, media: Media, *, channel: ChannelConnection, http: httpx.Client
    ) -> MediaContent:
        return outbound.fetch_media(media, channel=channel, http=http)


ADAPTER = TwilioAdapter()
