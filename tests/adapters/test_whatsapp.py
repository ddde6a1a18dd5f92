"""WhatsApp adapter: Meta's documented webhook shapes in, canonical events out."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import ChannelSecrets
from adapters.whatsapp import ADAPTER
from engine.errors import InvalidPayloadError, SignatureMismatchError
from engine.events import (
    ChannelType,
    DeliveryStatus,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    MessageType,
    ProviderNotice,
    Reaction,
    StatusUpdate,
    WebhookRequest,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "whatsapp"
PRIMARY = "106540352242922"
SECOND = "106540352242923"
APP_SECRET = "0f5c1d9e8b7a6c5d4e3f2a1b0c9d8e7f"
SECRETS = ChannelSecrets(app_secret=APP_SECRET)


def req(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    """The request as the webhook endpoint hands it over (header names lower-cased)."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return WebhookRequest(
        body=body, headers=lowered, url="https://example.test/webhooks/whatsapp/1"
    )


def body_of(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def payload_of(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(body_of(name))
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def parse(body: bytes, address_id: str = PRIMARY) -> list[InboundEvent]:
    return list(ADAPTER.parse(body, address_id=address_id))


def only_message(name: str) -> InboundMessage:
    [event] = parse(body_of(name))
    assert isinstance(event, InboundMessage), event
    return event


def only_status(name: str) -> StatusUpdate:
    [event] = parse(body_of(name))
    assert isinstance(event, StatusUpdate), event
    return event


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def first_message(payload: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    return message


# --- signature -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-Hub-Signature-256", "x-hub-signature-256"])
def test_valid_signature_passes_whatever_the_header_case(header: str) -> None:
    body = body_of("text")
    ADAPTER.verify(req(body, {header: signature(body)}), SECRETS)


def test_signature_with_the_wrong_secret_is_rejected() -> None:
    body = body_of("text")
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(body, {"x-hub-signature-256": signature(body, "other")}), SECRETS)


def test_tampered_body_is_rejected() -> None:
    body = body_of("text")
    tampered = body.replace(b"4521", b"4522")
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(tampered, {"x-hub-signature-256": signature(body)}), SECRETS)


def test_missing_signature_header_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError, match="missing"):
        ADAPTER.verify(req(body_of("text"), {"content-type": "application/json"}), SECRETS)


@pytest.mark.parametrize(
    "header",
    ["", "sha256=", "sha1=" + "0" * 40, "sha256=not-hex", "sha256=" + "é" * 64, "abc" * 30],
)
def test_malformed_signature_header_is_rejected(header: str) -> None:
    with pytest.raises(SignatureMismatchError, match="malformed"):
        ADAPTER.verify(req(body_of("text"), {"x-hub-signature-256": header}), SECRETS)


def test_channel_without_app_secret_rejects_everything() -> None:
    body = body_of("text")
    with pytest.raises(SignatureMismatchError) as caught:
        ADAPTER.verify(req(body, {"x-hub-signature-256": signature(body)}), ChannelSecrets())
    assert APP_SECRET not in str(caught.value)


# --- envelope, addressing, dedupe ------------------------------------------------------------


def test_adapter_is_for_whatsapp() -> None:
    assert ADAPTER.channel_type is ChannelType.WHATSAPP


def test_address_ids_of_a_batch_lists_every_number() -> None:
    assert ADAPTER.address_ids(req(body_of("batch"))) == {PRIMARY, SECOND}


def test_address_ids_of_a_single_message() -> None:
    assert ADAPTER.address_ids(req(body_of("text"))) == {PRIMARY}


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b"",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account"}',
        b"[1, 2, 3]",
    ],
)
def test_address_ids_rejects_what_is_not_a_whatsapp_webhook(body: bytes) -> None:
    with pytest.raises(InvalidPayloadError):
        ADAPTER.address_ids(req(body))


def test_parse_of_garbage_is_one_malformed_event() -> None:
    [event] = parse(b"\x00\xffnot json at all")
    assert isinstance(event, MalformedEvent)
    assert event.reason == "body is not JSON"


def test_dedupe_key_is_stable_for_identical_bytes_only() -> None:
    body = body_of("text")
    assert ADAPTER.dedupe_key(req(body)) == ADAPTER.dedupe_key(req(bytes(body)))
    assert ADAPTER.dedupe_key(req(body)).startswith("sha256:")
    assert ADAPTER.dedupe_key(req(body)) != ADAPTER.dedupe_key(req(body + b"\n"))


def test_batch_parsed_for_the_second_number_has_only_its_events() -> None:
    events = parse(body_of("batch"), SECOND)
    assert [type(e) for e in events] == [InboundMessage, Reaction]
    message, reaction = events
    assert isinstance(message, InboundMessage) and isinstance(reaction, Reaction)
    assert message.sender.name == "Carla Dias"
    assert message.body == "Vocês entregam no Rio?"
    assert reaction.emoji == "❤️"


def test_batch_parsed_for_the_primary_number_keeps_document_order() -> None:
    events = parse(body_of("batch"))
    assert [type(e) for e in events] == [InboundMessage, InboundMessage, StatusUpdate]
    text, image, status = events
    assert isinstance(text, InboundMessage) and isinstance(image, InboundMessage)
    assert (text.sender.name, text.type) == ("Ana Lima", MessageType.TEXT)
    # Sender name comes from the contact with the matching wa_id; the phone is left as sent.
    assert image.sender.name == "Bruno Costa"
    assert image.sender.phone == "551187654321"
    assert isinstance(status, StatusUpdate) and status.status is DeliveryStatus.DELIVERED


def test_parse_for_an_unknown_number_is_empty() -> None:
    assert parse(body_of("batch"), "999") == []


# --- messages --------------------------------------------------------------------------------


def test_text() -> None:
    message = only_message("text")
    assert message.type is MessageType.TEXT
    assert message.body == "Olá! Meu pedido #4521 ainda não chegou."
    assert message.provider_message_id.startswith("wamid.")
    assert message.provider_timestamp == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)
    assert message.sender.external_id == "5511987654321"
    assert message.sender.name == "Ana Lima"
    assert message.sender.phone == "5511987654321"
    assert message.quoted_provider_message_id is None
    assert message.referral is None


def test_image() -> None:
    message = only_message("image")
    assert message.type is MessageType.IMAGE
    assert message.body == "Foto da caixa amassada"
    [media] = message.media
    assert media.type is MessageType.IMAGE
    assert media.provider_media_id == "1003383421387256"
    assert media.mime_type == "image/jpeg"
    assert media.sha256 == "ZLLDDE6ZzXJCeHtQ3lUa0WNDt9fKdFMYSHy3Nf6VCx4="
    assert media.caption == "Foto da caixa amassada"


def test_audio_file() -> None:
    message = only_message("audio")
    assert message.type is MessageType.AUDIO
    assert message.body is None
    [media] = message.media
    assert (media.type, media.mime_type) == (MessageType.AUDIO, "audio/mpeg")


def test_voice_note() -> None:
    message = only_message("voice")
    assert message.type is MessageType.VOICE
    [media] = message.media
    assert media.type is MessageType.VOICE
    assert media.provider_media_id == "1864127944160719"
    assert media.mime_type == "audio/ogg; codecs=opus"


def test_video() -> None:
    message = only_message("video")
    assert message.type is MessageType.VIDEO
    assert message.body == "O produto fazendo barulho"
    [media] = message.media
    assert (media.provider_media_id, media.mime_type) == ("1141549387436521", "video/mp4")


def test_document() -> None:
    message = only_message("document")
    assert message.type is MessageType.DOCUMENT
    assert message.body == "Nota fiscal de março"
    [media] = message.media
    assert media.filename == "nota-fiscal-0325.pdf"
    assert media.mime_type == "application/pdf"


def test_sticker() -> None:
    message = only_message("sticker")
    assert message.type is MessageType.STICKER
    assert message.body is None
    [media] = message.media
    assert (media.provider_media_id, media.mime_type) == ("1308234577068553", "image/webp")


def test_location() -> None:
    message = only_message("location")
    assert message.type is MessageType.LOCATION
    assert message.location is not None
    assert (message.location.latitude, message.location.longitude) == (-23.561414, -46.655881)
    assert message.location.name == "MASP"
    assert message.location.address is not None and "Paulista" in message.location.address
    assert message.location.url == "https://masp.org.br"


def test_shared_contacts() -> None:
    message = only_message("contacts")
    assert message.type is MessageType.CONTACTS
    assert message.body is None
    [card] = message.contacts
    assert card.name == "Maria Souza"
    assert card.phones == ("+55 11 91234-5678", "+55 11 3456-7890")


def test_interactive_button_reply() -> None:
    message = only_message("interactive_button_reply")
    assert message.type is MessageType.INTERACTIVE
    assert message.reply_id == "confirm_delivery_yes"
    assert message.body == "Sim, recebi"
    assert message.quoted_provider_message_id is not None


def test_interactive_list_reply() -> None:
    message = only_message("interactive_list_reply")
    assert message.type is MessageType.INTERACTIVE
    assert message.reply_id == "shipping_express"
    assert message.body == "Entrega expressa"


def test_template_quick_reply_button() -> None:
    message = only_message("button")
    assert message.type is MessageType.BUTTON
    assert message.body == "Parar promoções"
    assert message.reply_id == "STOP_PROMOTIONS"


def test_reaction() -> None:
    [event] = parse(body_of("reaction"))
    assert isinstance(event, Reaction)
    assert event.emoji == "👍"
    assert event.target_provider_message_id.startswith("wamid.")
    assert event.sender.external_id == "5511987654321"


def test_reaction_removed() -> None:
    [event] = parse(body_of("reaction_removed"))
    assert isinstance(event, Reaction)
    assert event.emoji is None


def test_reaction_with_empty_emoji_is_a_removal() -> None:
    payload = payload_of("reaction")
    first_message(payload)["reaction"]["emoji"] = ""
    [event] = parse(encode(payload))
    assert isinstance(event, Reaction) and event.emoji is None


def test_reply_with_context_quotes_the_earlier_message() -> None:
    message = only_message("reply_with_context")
    assert message.type is MessageType.TEXT
    assert message.quoted_provider_message_id == (
        "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ3QUZFNkQ0RjZBRjM1QkE0QQA="
    )


def test_referral_from_a_click_to_whatsapp_ad() -> None:
    message = only_message("referral")
    assert message.referral is not None
    assert message.referral.source_type == "ad"
    assert message.referral.source_id == "120226305854810726"
    assert message.referral.source_url == "https://fb.me/2ZulEu42P"
    assert message.referral.headline == "Frete grátis esta semana"
    assert message.referral.body is not None and message.referral.body.startswith("Compras")


def test_unsupported_message_carries_the_provider_error() -> None:
    message = only_message("unsupported")
    assert message.type is MessageType.UNSUPPORTED
    assert message.error_code == 131051
    assert message.error_title == "Message type unknown"


def test_unknown_message_type_is_unsupported_not_malformed() -> None:
    payload = payload_of("text")
    message = first_message(payload)
    message["type"] = "order"
    message["order"] = {"catalog_id": "123", "product_items": []}
    [event] = parse(encode(payload))
    assert isinstance(event, InboundMessage)
    assert event.type is MessageType.UNSUPPORTED
    assert event.error_title == "unknown type order"


# --- statuses and provider errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("status_sent", DeliveryStatus.SENT),
        ("status_delivered", DeliveryStatus.DELIVERED),
        ("status_read", DeliveryStatus.READ),
    ],
)
def test_delivery_status(name: str, status: DeliveryStatus) -> None:
    update = only_status(name)
    assert update.status is status
    assert update.provider_message_id.startswith("wamid.")
    assert update.recipient_id == "5511987654321"
    assert update.provider_timestamp.tzinfo is UTC
    assert update.error_code is None


def test_failed_status_carries_the_error() -> None:
    update = only_status("status_failed")
    assert update.status is DeliveryStatus.FAILED
    assert update.error_code == 131026
    assert update.error_title == "Message undeliverable"


def test_unknown_status_is_a_notice() -> None:
    payload = payload_of("status_sent")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "deleted"
    assert parse(encode(payload)) == [ProviderNotice(title="status deleted")]


def test_status_without_timestamp_is_malformed() -> None:
    payload = payload_of("status_sent")
    del payload["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"]
    [event] = parse(encode(payload))
    assert isinstance(event, MalformedEvent)
    assert event.reason == "status.timestamp: Field required"


def test_value_errors_become_one_notice_each() -> None:
    assert parse(body_of("errors")) == [
        ProviderNotice(code=131000, title="Something went wrong"),
        ProviderNotice(code=130472, title="User's number is part of an experiment"),
    ]


def test_non_message_field_is_a_notice() -> None:
    payload = payload_of("text")
    payload["entry"][0]["changes"][0]["field"] = "message_echoes"
    assert parse(encode(payload)) == [ProviderNotice(title="unsupported field message_echoes")]


# --- malformed parts -------------------------------------------------------------------------


def test_message_without_sender_is_malformed_and_spares_its_neighbour() -> None:
    good, bad = parse(body_of("malformed_message"))
    assert isinstance(good, InboundMessage)
    assert good.body == "Essa chegou certinho"
    assert isinstance(bad, MalformedEvent)
    assert bad.reason == "message.from: Field required"
    assert json.loads(bad.fragment)["text"] == {"body": "mensagem sem remetente"}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: m.pop("id"), "message.id: Field required"),
        (lambda m: m.pop("timestamp"), "message.timestamp: Field required"),
        (lambda m: m.pop("type"), "message.type: Field required"),
        (lambda m: m.pop("image"), "message.image: Field required"),
        (lambda m: m["image"].pop("id"), "message.image.id: Field required"),
        (lambda m: m.update(timestamp="yesterday"), "message.timestamp: Value error"),
    ],
)
def test_broken_image_message_is_malformed(mutate: Any, reason: str) -> None:
    payload = payload_of("image")
    mutate(first_message(payload))
    [event] = parse(encode(payload))
    assert isinstance(event, MalformedEvent)
    assert event.reason.startswith(reason)


def test_location_without_latitude_is_malformed() -> None:
    payload = payload_of("location")
    del first_message(payload)["location"]["latitude"]
    [event] = parse(encode(payload))
    assert isinstance(event, MalformedEvent)
    assert event.reason == "message.location.latitude: Field required"


def test_broken_change_value_is_one_malformed_event() -> None:
    payload = payload_of("text")
    payload["entry"][0]["changes"][0]["value"]["messages"] = "not a list"
    [event] = parse(encode(payload))
    assert isinstance(event, MalformedEvent)
    assert event.reason.startswith("change.value.messages")


def test_malformed_fragment_is_truncated() -> None:
    payload = payload_of("text")
    message = first_message(payload)
    del message["from"]
    message["text"]["body"] = "x" * 5000
    [event] = parse(encode(payload))
    assert isinstance(event, MalformedEvent)
    assert len(event.fragment) == 2000
