"""Telegram adapter, inbound: documented Update shapes in, canonical events out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import ChannelAdapter, ChannelSecrets
from adapters.telegram import ADAPTER
from engine.errors import SignatureMismatchError
from engine.events import (
    ChannelType,
    ContactChange,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    MessageEdit,
    MessageType,
    ProviderNotice,
    Sender,
    WebhookRequest,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "telegram"
BOT_ID = "7012345678"
SECRET = "s3cr3t_Token-for-the-webhook"
SECRETS = ChannelSecrets(
    bot_token=f"{BOT_ID}:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", webhook_secret=SECRET
)
ANA = Sender(external_id="123456789", name="Ana Lima")
SENT_AT = datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)


def req(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    """The request as the webhook endpoint hands it over (header names lower-cased)."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return WebhookRequest(
        body=body, headers=lowered, url="https://example.test/webhooks/telegram/1"
    )


def body_of(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def payload_of(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(body_of(name))
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def only(body: bytes) -> InboundEvent:
    [event] = ADAPTER.parse(body, address_id=BOT_ID, content_type="application/json")
    return event


def only_message(name: str) -> InboundMessage:
    event = only(body_of(name))
    assert isinstance(event, InboundMessage), event
    return event


def malformed(payload: dict[str, Any]) -> MalformedEvent:
    event = only(encode(payload))
    assert isinstance(event, MalformedEvent), event
    return event


# --- secret token ----------------------------------------------------------------------------


def test_adapter_is_a_whole_telegram_channel() -> None:
    adapter: ChannelAdapter = ADAPTER
    assert adapter.channel_type is ChannelType.TELEGRAM


@pytest.mark.parametrize(
    "header", ["X-Telegram-Bot-Api-Secret-Token", "x-telegram-bot-api-secret-token"]
)
def test_matching_secret_token_passes_whatever_the_header_case(header: str) -> None:
    ADAPTER.verify(req(body_of("text"), {header: SECRET}), SECRETS)


@pytest.mark.parametrize(
    "token", ["", "wrong", SECRET + "x", SECRET[:-1], SECRET.upper(), "sêcret"]
)
def test_wrong_secret_token_is_rejected(token: str) -> None:
    with pytest.raises(SignatureMismatchError, match="does not match"):
        ADAPTER.verify(req(body_of("text"), {"x-telegram-bot-api-secret-token": token}), SECRETS)


def test_missing_secret_token_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError, match="missing"):
        ADAPTER.verify(req(body_of("text"), {"content-type": "application/json"}), SECRETS)


def test_channel_without_webhook_secret_rejects_everything() -> None:
    secrets = ChannelSecrets(bot_token=SECRETS.bot_token)
    with pytest.raises(SignatureMismatchError, match="no webhook secret"):
        ADAPTER.verify(req(body_of("text"), {"x-telegram-bot-api-secret-token": ""}), secrets)


# --- addressing and dedupe -------------------------------------------------------------------


def test_address_ids_is_none_because_the_url_names_the_bot() -> None:
    assert ADAPTER.address_ids(req(body_of("text"))) is None
    assert ADAPTER.address_ids(req(b"not json")) is None


def test_dedupe_key_is_the_update_id() -> None:
    assert ADAPTER.dedupe_key(req(body_of("text"))) == "update:870001001"
    # Telegram's redelivery of an update is the same update_id even if re-serialised.
    compact = json.dumps(payload_of("text"), separators=(",", ":")).encode()
    assert ADAPTER.dedupe_key(req(compact)) == "update:870001001"


@pytest.mark.parametrize(
    "body", [b"<html>", b"", b"[1]", b'{"update_id": "870001001"}', b'{"update_id": true}']
)
def test_dedupe_key_without_an_integer_update_id_hashes_the_body(body: bytes) -> None:
    key = ADAPTER.dedupe_key(req(body))
    assert key.startswith("sha256:") and len(key) == 7 + 64
    assert key == ADAPTER.dedupe_key(req(bytes(body)))


# --- private messages ------------------------------------------------------------------------


def test_text_with_entities_keeps_the_plain_text() -> None:
    message = only_message("text")
    assert message.type is MessageType.TEXT
    assert message.body == (
        "Olá! Meu pedido #4521 ainda não chegou. Rastreio: https://loja.example/r/4521"
    )
    assert message.provider_message_id == "123456789:4521"
    assert message.provider_timestamp == SENT_AT
    assert message.sender == ANA
    assert (message.is_group, message.author, message.quoted_provider_message_id) == (
        False,
        None,
        None,
    )


def test_photo_takes_the_largest_size() -> None:
    message = only_message("photo")
    assert message.type is MessageType.IMAGE
    assert message.body == "Foto da caixa amassada"
    [media] = message.media
    assert media.type is MessageType.IMAGE
    assert media.provider_media_id == "AgACAgEAAxkBAAIBQ2ZlargeXYZ"
    assert media.mime_type == "image/jpeg"
    assert media.caption == "Foto da caixa amassada"


def test_photo_sizes_out_of_order_still_pick_the_largest() -> None:
    payload = payload_of("photo")
    payload["message"]["photo"].reverse()
    event = only(encode(payload))
    assert isinstance(event, InboundMessage)
    assert event.media[0].provider_media_id == "AgACAgEAAxkBAAIBQ2ZlargeXYZ"


def test_voice_note() -> None:
    message = only_message("voice")
    assert message.type is MessageType.VOICE
    assert message.body is None
    [media] = message.media
    assert (media.type, media.provider_media_id, media.mime_type) == (
        MessageType.VOICE,
        "AwACAgEAAxkBAAIBRGZvoiceXYZ",
        "audio/ogg",
    )


def test_audio_file() -> None:
    message = only_message("audio")
    assert message.type is MessageType.AUDIO
    assert message.body == "Gravação da ligação"
    [media] = message.media
    assert (media.mime_type, media.filename) == ("audio/mpeg", "gravacao-atendimento.mp3")


def test_video() -> None:
    message = only_message("video")
    assert message.type is MessageType.VIDEO
    assert message.body == "O produto fazendo barulho"
    [media] = message.media
    assert (media.provider_media_id, media.mime_type) == (
        "BAACAgEAAxkBAAIBRmZvideoXYZ",
        "video/mp4",
    )


def test_document() -> None:
    message = only_message("document")
    assert message.type is MessageType.DOCUMENT
    assert message.body == "Nota fiscal de março"
    [media] = message.media
    assert media.filename == "nota-fiscal-0325.pdf"
    assert media.mime_type == "application/pdf"
    assert media.provider_media_id == "BQACAgEAAxkBAAIBR2ZdocXYZ"


def test_animation_is_a_video_not_its_duplicate_document() -> None:
    message = only_message("animation")
    assert message.type is MessageType.VIDEO
    [media] = message.media
    assert media.provider_media_id == "CgACAgEAAxkBAAIBTGZanimXYZ"


def test_sticker() -> None:
    message = only_message("sticker")
    assert message.type is MessageType.STICKER
    assert message.body is None
    [media] = message.media
    assert (media.provider_media_id, media.mime_type) == (
        "CAACAgIAAxkBAAIBSGZstickerXYZ",
        "image/webp",
    )


@pytest.mark.parametrize(
    ("flag", "mime"), [("is_animated", "application/x-tgsticker"), ("is_video", "video/webm")]
)
def test_animated_and_video_stickers_have_their_own_mime_type(flag: str, mime: str) -> None:
    payload = payload_of("sticker")
    payload["message"]["sticker"][flag] = True
    event = only(encode(payload))
    assert isinstance(event, InboundMessage) and event.media[0].mime_type == mime


def test_location() -> None:
    message = only_message("location")
    assert message.type is MessageType.LOCATION
    assert message.location is not None
    assert (message.location.latitude, message.location.longitude) == (-23.561414, -46.655881)
    assert message.location.name is None


def test_venue_is_a_named_location() -> None:
    message = only_message("venue")
    assert message.type is MessageType.LOCATION
    assert message.location is not None
    assert message.location.name == "MASP"
    assert message.location.address is not None and "Paulista" in message.location.address


def test_shared_contact() -> None:
    message = only_message("contact")
    assert message.type is MessageType.CONTACTS
    assert message.body is None
    [card] = message.contacts
    assert (card.name, card.phones) == ("Maria Souza", ("+5511912345678",))


def test_reply_quotes_the_earlier_message_of_the_same_chat() -> None:
    message = only_message("reply")
    assert message.body == "Mas o rastreio não atualiza"
    assert message.quoted_provider_message_id == "123456789:4530"


def test_private_sender_without_names_falls_back_to_username() -> None:
    payload = payload_of("text")
    chat = payload["message"]["chat"]
    del chat["first_name"], chat["last_name"]
    event = only(encode(payload))
    assert isinstance(event, InboundMessage)
    assert event.sender == Sender(external_id="123456789", name="analima")


def test_unsupported_content_is_named() -> None:
    payload = payload_of("text")
    message = payload["message"]
    del message["text"], message["entities"]
    message["dice"] = {"emoji": "🎲", "value": 4}
    event = only(encode(payload))
    assert isinstance(event, InboundMessage)
    assert event.type is MessageType.UNSUPPORTED
    assert event.error_title == "unsupported content dice"


# --- edits, buttons, membership --------------------------------------------------------------


def test_edited_message() -> None:
    event = only(body_of("edited_message"))
    assert event == MessageEdit(
        provider_message_id="123456789:4521",
        provider_timestamp=datetime(2025, 6, 8, 21, 1, 18, tzinfo=UTC),
        sender=ANA,
        body="Olá! Meu pedido #4522 ainda não chegou.",
    )


def test_edited_caption_is_the_new_body() -> None:
    payload = payload_of("photo")
    payload["edited_message"] = payload.pop("message")
    payload["edited_message"]["caption"] = "Foto nova"
    event = only(encode(payload))
    assert isinstance(event, MessageEdit) and event.body == "Foto nova"


def test_live_location_edit_is_a_notice_not_an_edit() -> None:
    payload = payload_of("location")
    payload["edited_message"] = payload.pop("message")
    payload["edited_message"]["edit_date"] = 1749416400
    assert only(encode(payload)) == ProviderNotice(title="unsupported edit of a live location")


def test_callback_query_is_a_button_press() -> None:
    message = only_message("callback_query")
    assert message.type is MessageType.BUTTON
    assert message.provider_message_id == "cb:4382519863247891234"
    assert (message.body, message.reply_id) == ("confirm_delivery_yes", "confirm_delivery_yes")
    assert message.quoted_provider_message_id == "123456789:4532"
    assert message.provider_timestamp == datetime(2025, 6, 8, 21, 1, 43, tzinfo=UTC)
    assert message.sender == ANA
    assert not message.is_group


def test_callback_query_from_an_inline_message_is_a_notice() -> None:
    payload = payload_of("callback_query")
    del payload["callback_query"]["message"]
    payload["callback_query"]["inline_message_id"] = "AQAAAHk2AAA"
    assert only(encode(payload)) == ProviderNotice(
        title="unsupported callback_query from an inline message"
    )


def test_my_chat_member_kicked_means_the_user_blocked_the_bot() -> None:
    event = only(body_of("my_chat_member_kicked"))
    assert event == ContactChange(
        sender=ANA, provider_timestamp=datetime(2025, 6, 8, 21, 6, 23, tzinfo=UTC), unreachable=True
    )


def test_my_chat_member_member_means_the_user_unblocked_the_bot() -> None:
    event = only(body_of("my_chat_member_member"))
    assert isinstance(event, ContactChange)
    assert (event.sender, event.unreachable) == (ANA, False)


def test_my_chat_member_restricted_is_a_notice() -> None:
    payload = payload_of("my_chat_member_member")
    payload["my_chat_member"]["new_chat_member"]["status"] = "restricted"
    assert only(encode(payload)) == ProviderNotice(
        title="unsupported my_chat_member status restricted"
    )


# --- groups ----------------------------------------------------------------------------------


def test_group_message_is_the_group_speaking_through_its_author() -> None:
    message = only_message("group")
    assert message.is_group
    assert message.sender == Sender(external_id="-4012345678", name="Clientes VIP")
    assert message.author == Sender(external_id="987654321", name="Bruno")
    assert message.provider_message_id == "-4012345678:88"


def test_supergroup_message_quotes_within_the_supergroup() -> None:
    message = only_message("supergroup")
    assert message.is_group
    assert message.sender == Sender(external_id="-1001234567890", name="Suporte Loja Exemplo")
    assert message.author == ANA
    assert message.body is not None and message.body.startswith("@loja_exemplo_bot")
    assert message.quoted_provider_message_id == "-1001234567890:1199"


def test_anonymous_group_admin_is_authored_by_the_sender_chat() -> None:
    payload = payload_of("supergroup")
    payload["message"]["sender_chat"] = payload["message"]["chat"]
    event = only(encode(payload))
    assert isinstance(event, InboundMessage)
    assert event.author == Sender(external_id="-1001234567890", name="Suporte Loja Exemplo")


def test_group_service_message_is_a_notice() -> None:
    assert only(body_of("new_chat_members")) == ProviderNotice(
        title="service message new_chat_members"
    )


def test_group_button_press_has_an_author() -> None:
    payload = payload_of("callback_query")
    payload["callback_query"]["message"]["chat"] = payload_of("group")["message"]["chat"]
    event = only(encode(payload))
    assert isinstance(event, InboundMessage)
    assert event.is_group and event.author == ANA
    assert event.quoted_provider_message_id == "-4012345678:4532"


# --- other updates and malformed ones --------------------------------------------------------


def test_channel_post_is_an_unsupported_update() -> None:
    assert only(body_of("channel_post")) == ProviderNotice(title="unsupported update channel_post")


def test_message_without_chat_is_malformed() -> None:
    event = only(body_of("malformed"))
    assert isinstance(event, MalformedEvent)
    assert event.reason == "message.chat: Field required"
    assert json.loads(event.fragment)["message"]["text"] == "mensagem sem chat"


@pytest.mark.parametrize(
    ("name", "mutate", "reason"),
    [
        ("text", lambda u: u["message"].pop("date"), "message.date: Field required"),
        ("text", lambda u: u["message"].update(date="yesterday"), "message.date: Value error"),
        ("photo", lambda u: u["message"].update(photo=[]), "message.photo: List should have"),
        ("voice", lambda u: u["message"]["voice"].pop("file_id"), "message.voice.file_id"),
        ("location", lambda u: u["message"]["location"].update(latitude=91), "message.location"),
        ("callback_query", lambda u: u["callback_query"].pop("id"), "callback_query.id"),
        ("edited_message", lambda u: u["edited_message"].pop("chat"), "edited_message.chat"),
        ("my_chat_member_kicked", lambda u: u["my_chat_member"].pop("new_chat_member"), "my_"),
        ("text", lambda u: u.update(message="hello"), "message: Input should be a valid dict"),
        ("text", lambda u: u.pop("update_id"), "update.update_id: Field required"),
        ("text", lambda u: u.pop("message"), "update: no update kind"),
    ],
)
def test_broken_update_is_malformed(name: str, mutate: Any, reason: str) -> None:
    payload = payload_of(name)
    mutate(payload)
    assert malformed(payload).reason.startswith(reason)


@pytest.mark.parametrize("body", [b"\x00\xffnot json", b""])
def test_garbage_body_is_one_malformed_event(body: bytes) -> None:
    event = only(body)
    assert isinstance(event, MalformedEvent) and event.reason == "body is not JSON"


def test_update_that_is_not_an_object_is_malformed() -> None:
    assert only(b"[1, 2]") == MalformedEvent(
        reason="update: Input should be a valid dictionary or instance of Update", fragment="[1,2]"
    )


def test_malformed_fragment_is_truncated() -> None:
    payload = payload_of("malformed")
    payload["message"]["text"] = "x" * 5000
    assert len(malformed(payload).fragment) == 2000
