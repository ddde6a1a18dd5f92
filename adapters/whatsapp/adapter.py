"""WhatsApp Cloud API adapter: verifies and parses Meta's webhooks; sends through outbound.py."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from adapters.base import ChannelSecrets
from adapters.fragments import fragment_text
from adapters.meta.signature import verify_hub_signature
from adapters.whatsapp.outbound import WhatsAppOutbound
from adapters.whatsapp.payloads import (
    Change,
    Contact,
    ContactCard,
    Envelope,
    Error,
    Interactive,
    Message,
    MessagesChange,
    Status,
)
from engine.errors import InvalidPayloadError
from engine.events import (
    ChannelType,
    DeliveryStatus,
    InboundEvent,
    InboundMessage,
    Location,
    MalformedEvent,
    Media,
    MessageType,
    ProviderNotice,
    Reaction,
    Referral,
    Sender,
    SharedContact,
    StatusUpdate,
    WebhookRequest,
)

_FRAGMENT_MAX_CHARS = 2000
# "pending" is ours, never Meta's; anything else Meta invents is news, not a delivery status.
_STATUSES = frozenset({"sent", "delivered", "read", "failed"})


class _MissingFieldError(Exception):
    """A typed block the message's `type` promises is absent; the argument is its path."""


@dataclass(frozen=True)
class _Content:
    type: MessageType
    body: str | None = None
    media: tuple[Media, ...] = ()
    location: Location | None = None
    contacts: tuple[SharedContact, ...] = ()
    reply_id: str | None = None
    error_code: int | None = None
    error_title: str | None = None


_Block = TypeVar("_Block")


def _required(block: _Block | None, path: str) -> _Block:
    if block is None:
        raise _MissingFieldError(path)
    return block


def _media(message: Message) -> _Content:
    blocks = {
        "image": message.image,
        "video": message.video,
        "audio": message.audio,
        "document": message.document,
        "sticker": message.sticker,
    }
    block = _required(blocks[message.type], message.type)
    voice = message.type == "audio" and block.voice
    kind = MessageType.VOICE if voice else MessageType(message.type)
    media = Media(
        type=kind,
        mime_type=block.mime_type,
        provider_media_id=block.id,
        sha256=block.sha256,
        caption=block.caption,
        filename=block.filename,
    )
    return _Content(kind, body=block.caption, media=(media,))


def _interactive(block: Interactive) -> _Content:
    replies = {"button_reply": block.button_reply, "list_reply": block.list_reply}
    if block.type not in replies:
        return _Content(
            MessageType.UNSUPPORTED, error_title=f"unknown type interactive.{block.type}"
        )
    reply = _required(replies[block.type], f"interactive.{block.type}")
    return _Content(MessageType.INTERACTIVE, body=reply.title, reply_id=reply.id)


def _content(message: Message) -> _Content:
    if message.errors:
        error = message.errors[0]
        return _Content(MessageType.UNSUPPORTED, error_code=error.code, error_title=error.title)
    match message.type:
        case "text":
            return _Content(MessageType.TEXT, body=_required(message.text, "text").body)
        case "image" | "video" | "audio" | "document" | "sticker":
            return _media(message)
        case "location":
            block = _required(message.location, "location")
            return _Content(MessageType.LOCATION, location=Location(**block.model_dump()))
        case "contacts":
            cards = _required(message.contacts, "contacts")
            return _Content(MessageType.CONTACTS, contacts=tuple(map(_shared_contact, cards)))
        case "interactive":
            return _interactive(_required(message.interactive, "interactive"))
        case "button":
            button = _required(message.button, "button")
            return _Content(MessageType.BUTTON, body=button.text, reply_id=button.payload)
        case "unsupported":
            return _Content(MessageType.UNSUPPORTED)
        case other:
            return _Content(MessageType.UNSUPPORTED, error_title=f"unknown type {other}")


def _shared_contact(card: ContactCard) -> SharedContact:
    phones = tuple(p.phone for p in card.phones if p.phone)
    return SharedContact(name=card.name.formatted_name, phones=phones)


def _sender(wa_id: str, contacts: list[Contact]) -> Sender:
    contact = next((c for c in contacts if c.wa_id == wa_id), contacts[0] if contacts else None)
    name = contact.profile.name if contact and contact.profile else None
    return Sender(external_id=wa_id, name=name, phone=wa_id)


def _parse_message(raw: Any, *, contacts: list[Contact]) -> InboundEvent:
    message = Message.model_validate(raw)
    sender = _sender(message.from_, contacts)
    if message.type == "reaction" and not message.errors:
        reaction = _required(message.reaction, "reaction")
        return Reaction(
            provider_message_id=message.id,
            provider_timestamp=message.timestamp,
            sender=sender,
            target_provider_message_id=reaction.message_id,
            emoji=reaction.emoji or None,  # no emoji (absent or "") means the customer removed it
        )
    content = _content(message)
    referral = message.referral
    return InboundMessage(
        provider_message_id=message.id,
        provider_timestamp=message.timestamp,
        sender=sender,
        type=content.type,
        body=content.body,
        media=content.media,
        location=content.location,
        contacts=content.contacts,
        quoted_provider_message_id=message.context.id if message.context else None,
        reply_id=content.reply_id,
        referral=Referral(**referral.model_dump()) if referral else None,
        error_code=content.error_code,
        error_title=content.error_title,
    )


def _parse_status(raw: Any) -> InboundEvent:
    status = Status.model_validate(raw)
    if status.status not in _STATUSES:
        return ProviderNotice(title=f"status {status.status}")
    error = status.errors[0] if status.errors else Error()
    return StatusUpdate(
        provider_message_id=status.id,
        provider_timestamp=status.timestamp,
        recipient_id=status.recipient_id,
        status=DeliveryStatus(status.status),
        error_code=error.code,
        error_title=error.title,
    )


def _parse_error(raw: Any) -> InboundEvent:
    error = Error.model_validate(raw)
    return ProviderNotice(code=error.code, title=error.title or error.message or "untitled error")


def _malformed(reason: str, fragment: Any) -> MalformedEvent:
    text = fragment_text(fragment, _FRAGMENT_MAX_CHARS)
    return MalformedEvent(reason=reason, fragment=text)


def _describe(part: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    return part + "".join(f".{p}" for p in first["loc"]) + f": {first['msg']}"


def _guard(part: str, raw: Any, parse_part: Callable[[Any], InboundEvent]) -> InboundEvent:
    """Run `parse_part`, turning any shape error into a MalformedEvent naming the field."""
    try:
        return parse_part(raw)
    except _MissingFieldError as exc:
        return _malformed(f"{part}.{exc}: Field required", raw)
    except ValidationError as exc:
        return _malformed(_describe(part, exc), raw)


def _parse_change(raw: Any) -> list[InboundEvent]:
    try:
        field = Change.model_validate(raw).field
        if field != "messages":
            return [ProviderNotice(title=f"unsupported field {field}")]
        value = MessagesChange.model_validate(raw).value
    except ValidationError as exc:
        return [_malformed(_describe("change", exc), raw)]
    return [
        *(
            _guard("message", m, partial(_parse_message, contacts=value.contacts))
            for m in value.messages
        ),
        *(_guard("status", s, _parse_status) for s in value.statuses),
        *(_guard("error", e, _parse_error) for e in value.errors),
    ]


def _load_envelope(body: bytes) -> Envelope:
    # `from None`: pydantic's message quotes the input, and bodies must not reach the logs.
    try:
        return Envelope.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError:
        raise InvalidPayloadError("body is not JSON") from None
    except ValidationError:
        raise InvalidPayloadError("not a whatsapp_business_account webhook") from None


def _addressed_changes(envelope: Envelope) -> Iterator[tuple[str, Any]]:
    """(phone_number_id, raw change) pairs; parts naming no number belong to no channel.

    A plain walk over the parsed JSON rather than a model per part: it runs on every webhook
    request, before the provider has its answer.
    """
    for raw_entry in envelope.entry:
        changes = raw_entry.get("changes") if isinstance(raw_entry, dict) else None
        if not isinstance(changes, list):
            continue
        for raw_change in changes:
            value = raw_change.get("value") if isinstance(raw_change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            address = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if isinstance(address, str):
                yield address, raw_change


class WhatsAppAdapter(WhatsAppOutbound):
    """The WhatsApp Cloud API channel; one channel per business phone_number_id."""

    channel_type = ChannelType.WHATSAPP

    def verify(self, request: WebhookRequest, secrets: ChannelSecrets) -> None:
        verify_hub_signature(request, secrets)

    def address_ids(self, request: WebhookRequest) -> set[str] | None:
        return {address for address, _ in _addressed_changes(_load_envelope(request.body))}

    def dedupe_key(self, request: WebhookRequest) -> str:
        # Meta redelivers the same bytes; per-message uniqueness is the database's job.
        return "sha256:" + hashlib.sha256(request.body).hexdigest()

    def parse(
        self, body: bytes, *, address_id: str, content_type: str = "application/json"
    ) -> Sequence[InboundEvent]:
        try:
            envelope = _load_envelope(body)
        except InvalidPayloadError as exc:
            fragment = body[:_FRAGMENT_MAX_CHARS].decode("utf-8", "replace")
            return [MalformedEvent(reason=str(exc), fragment=fragment)]
        return [
            event
            for address, change in _addressed_changes(envelope)
            if address == address_id
            for event in _parse_change(change)
        ]


ADAPTER = WhatsAppAdapter()
