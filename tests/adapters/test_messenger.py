"""Messenger adapter: Meta's documented `object: page` webhooks in, Send API requests out."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from adapters.messenger import ADAPTER
from adapters.messenger.setup import ChannelSetup
from engine.errors import (
    InvalidPayloadError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
    SignatureMismatchError,
)
from engine.events import (
    ChannelConfig,
    ChannelConnection,
    ChannelSecrets,
    ChannelType,
    DeliveryStatus,
    InboundEvent,
    InboundMessage,
    MalformedEvent,
    Media,
    MessageDelete,
    MessageEdit,
    MessageType,
    OutboundMessage,
    ProviderNotice,
    Reaction,
    Receipt,
    StatusUpdate,
    WebhookRequest,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "messenger"
PAGE = "107358231245512"
PAGE2 = "107358231245513"
PSID = "6683514961756203"
PSID2 = "7023141955089321"
MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
MID_OURS = (
    "m_9Qkw3hT2LZpPq1o8RXk5yBmNnDzD4c1xV7aW0fJbEuSgYtHiOrKlMnCvBxZaQsWeRtYuIoPlKjHgFdSaZxCvBn"
)
AT = datetime(2025, 6, 8, 20, 59, 43, 123000, tzinfo=UTC)
APP_SECRET = "9d8c7b6a5f4e3d2c1b0a"
SECRETS = ChannelSecrets(app_secret=APP_SECRET)
TOKEN = "EAAPageTokenZCpsBAKZCv3"


def req(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return WebhookRequest(body=body, headers=lowered, url="https://example.test/webhooks/m/1")


def body_of(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def payload_of(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(body_of(name))
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def first_item(payload: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = payload["entry"][0]["messaging"][0]
    return item


def parse(body: bytes, address_id: str = PAGE) -> list[InboundEvent]:
    return list(ADAPTER.parse(body, address_id=address_id))


def only(name: str) -> InboundEvent:
    [event] = parse(body_of(name))
    return event


def only_message(name: str) -> InboundMessage:
    event = only(name)
    assert isinstance(event, InboundMessage), event
    return event


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- signature, envelope, addressing ---------------------------------------------------------


def test_adapter_is_for_messenger() -> None:
    assert ADAPTER.channel_type is ChannelType.MESSENGER


def test_valid_signature_passes() -> None:
    body = body_of("text")
    ADAPTER.verify(req(body, {"X-Hub-Signature-256": signature(body)}), SECRETS)


def test_wrong_signature_is_rejected() -> None:
    body = body_of("text")
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(body, {"X-Hub-Signature-256": signature(body, "other")}), SECRETS)


def test_tampered_body_is_rejected() -> None:
    body = body_of("text")
    tampered = body.replace(b"4521", b"4522")
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(tampered, {"x-hub-signature-256": signature(body)}), SECRETS)


def test_missing_signature_is_rejected() -> None:
    with pytest.raises(SignatureMismatchError, match="missing"):
        ADAPTER.verify(req(body_of("text")), SECRETS)


def test_address_ids_are_the_page_ids_of_every_entry() -> None:
    assert ADAPTER.address_ids(req(body_of("batch"))) == {PAGE, PAGE2}
    assert ADAPTER.address_ids(req(body_of("text"))) == {PAGE}


def test_entry_without_an_id_belongs_to_no_page() -> None:
    payload = payload_of("text")
    payload["entry"].append({"time": 1, "messaging": []})
    assert ADAPTER.address_ids(req(encode(payload))) == {PAGE}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"object": "page"}',
        b'{"object": "instagram", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": []}',
    ],
)
def test_address_ids_rejects_what_is_not_a_page_webhook(body: bytes) -> None:
    with pytest.raises(InvalidPayloadError):
        ADAPTER.address_ids(req(body))


def test_dedupe_key_is_the_body_hash() -> None:
    body = body_of("text")
    assert ADAPTER.dedupe_key(req(body)) == "sha256:" + hashlib.sha256(body).hexdigest()
    assert ADAPTER.dedupe_key(req(body)) != ADAPTER.dedupe_key(req(body + b" "))


def test_garbage_is_one_malformed_event() -> None:
    [event] = parse(b"\x00\xff")
    assert isinstance(event, MalformedEvent) and event.reason == "body is not JSON"


def test_parse_for_another_page_is_empty() -> None:
    assert parse(body_of("text"), "999") == []


# --- messages --------------------------------------------------------------------------------


def test_text() -> None:
    message = only_message("text")
    assert message.type is MessageType.TEXT
    assert message.body == "Oi! Meu pedido #4521 ainda não chegou."
    assert message.provider_message_id == MID
    assert message.provider_timestamp == AT
    assert message.sender.external_id == PSID
    assert (message.sender.phone, message.sender.name) == (None, None)
    assert message.quoted_provider_message_id is None


def test_image() -> None:
    message = only_message("image")
    assert message.type is MessageType.IMAGE
    assert message.body is None
    [media] = message.media
    assert media.type is MessageType.IMAGE
    assert media.url is not None and media.url.startswith("https://scontent.xx.fbcdn.net/")
    assert media.provider_media_id is None


def test_several_attachments_are_one_message() -> None:
    message = only_message("attachments")
    assert message.type is MessageType.IMAGE
    assert [m.type for m in message.media] == [
        MessageType.IMAGE,
        MessageType.VIDEO,
        MessageType.AUDIO,
        MessageType.DOCUMENT,
    ]
    assert message.media[3].url is not None and "nota-fiscal.pdf" in message.media[3].url


def test_sticker() -> None:
    message = only_message("sticker")
    assert message.type is MessageType.STICKER
    [media] = message.media
    assert media.type is MessageType.STICKER


def test_shared_link_is_kept_in_the_body() -> None:
    message = only_message("share")
    assert message.type is MessageType.TEXT
    assert message.body == "olha esse\nhttps://www.example.com/produtos/caneca-azul"
    assert message.media == ()


def test_quick_reply() -> None:
    message = only_message("quick_reply")
    assert message.type is MessageType.INTERACTIVE
    assert message.reply_id == "CONFIRM_DELIVERY_YES"
    assert message.body == "Sim, recebi"


def test_reply_quotes_the_earlier_message() -> None:
    message = only_message("reply")
    assert message.type is MessageType.TEXT
    assert message.quoted_provider_message_id == MID_OURS


def test_postback() -> None:
    message = only_message("postback")
    assert message.type is MessageType.BUTTON
    assert message.provider_message_id == "m_PB7nQ2rXk1wF3yU8tZqLzR"
    assert message.reply_id == "TALK_TO_AGENT"
    assert message.body == "Falar com atendente"


def test_postback_without_mid_gets_a_stable_synthetic_id() -> None:
    first = only_message("postback_get_started")
    again = only_message("postback_get_started")
    assert first.provider_message_id == again.provider_message_id
    assert first.provider_message_id.startswith("postback:")
    assert first.reply_id == "GET_STARTED"
    assert first.referral is not None
    assert (first.referral.source_type, first.referral.source_id) == ("shortlink", "promo_inverno")
    # Another tap a moment later is another event.
    payload = payload_of("postback_get_started")
    first_item(payload)["timestamp"] += 1000
    [later] = parse(encode(payload))
    assert isinstance(later, InboundMessage)
    assert later.provider_message_id != first.provider_message_id


def test_message_edit() -> None:
    event = only("message_edit")
    assert isinstance(event, MessageEdit)
    assert event.provider_message_id == MID
    assert event.body == "Oi! Meu pedido #4522 ainda não chegou."
    assert event.sender.external_id == PSID


def test_unsend_is_a_delete() -> None:
    payload = payload_of("text")
    first_item(payload)["message"] = {"mid": MID, "is_deleted": True}
    [event] = parse(encode(payload))
    assert event == MessageDelete(
        provider_message_id=MID, provider_timestamp=AT, sender=event.sender
    )


def test_ad_referral_opening_the_thread() -> None:
    message = only_message("referral")
    assert message.provider_message_id.startswith("referral:")
    assert message.body is None
    assert message.referral is not None
    assert message.referral.source_type == "ads"
    assert message.referral.source_id == "120226305854810726"
    assert message.referral.headline == "Frete grátis esta semana"
    assert message.referral.source_url is not None


# --- reactions, receipts, echoes -------------------------------------------------------------


def test_reaction() -> None:
    event = only("reaction")
    assert isinstance(event, Reaction)
    assert event.target_provider_message_id == MID_OURS
    assert event.emoji == "❤"
    assert event.provider_message_id.startswith("reaction:")
    assert event.provider_timestamp == AT


def test_unreact_removes_the_reaction() -> None:
    event, react = only("reaction_removed"), only("reaction")
    assert isinstance(event, Reaction) and isinstance(react, Reaction)
    assert event.emoji is None
    # Reacting and then removing are two events, not one redelivered.
    assert event.provider_message_id != react.provider_message_id


def test_reaction_without_emoji_uses_the_documented_name() -> None:
    payload = payload_of("reaction")
    del first_item(payload)["reaction"]["emoji"]
    [event] = parse(encode(payload))
    assert isinstance(event, Reaction) and event.emoji == "❤️"


def test_read_watermark() -> None:
    event = only("read")
    assert isinstance(event, Receipt)
    assert event.status is DeliveryStatus.READ
    assert event.watermark == AT - timedelta(minutes=1)
    assert event.provider_message_ids == ()
    assert event.sender.external_id == PSID


def test_delivery_without_timestamp_uses_its_watermark() -> None:
    event = only("delivery")
    assert isinstance(event, Receipt)
    assert event.status is DeliveryStatus.DELIVERED
    assert event.provider_message_ids == (MID_OURS,)
    assert event.watermark == AT - timedelta(minutes=2)
    assert event.provider_timestamp == event.watermark


def test_echo_is_a_sent_status_never_a_message() -> None:
    event = only("echo")
    assert event == StatusUpdate(
        provider_message_id=MID_OURS,
        provider_timestamp=AT,
        recipient_id=PSID,
        status=DeliveryStatus.SENT,
    )


def test_echo_of_an_attachment_is_still_a_status() -> None:
    payload = payload_of("echo")
    message = first_item(payload)["message"]
    del message["text"]
    message["attachments"] = [{"type": "image", "payload": {"url": "https://cdn.test/x.jpg"}}]
    [event] = parse(encode(payload))
    assert isinstance(event, StatusUpdate)


# --- batches and malformed parts -------------------------------------------------------------


def test_batch_for_the_first_page_keeps_document_order() -> None:
    events = parse(body_of("batch"))
    assert [type(e) for e in events] == [InboundMessage, InboundMessage, Receipt]
    text, image, _ = events
    assert isinstance(text, InboundMessage) and isinstance(image, InboundMessage)
    assert (text.provider_message_id, text.sender.external_id) == ("m_batch1", PSID)
    assert (image.provider_message_id, image.sender.external_id) == ("m_batch2", PSID2)


def test_batch_for_the_second_page_has_only_its_events() -> None:
    message, reaction = parse(body_of("batch"), PAGE2)
    assert isinstance(message, InboundMessage) and message.body == "Outra página"
    assert isinstance(reaction, Reaction) and reaction.emoji == "👍"


def test_item_without_sender_is_malformed_and_spares_its_neighbour() -> None:
    good, bad = parse(body_of("malformed"))
    assert isinstance(good, InboundMessage) and good.body == "Essa chegou certinho"
    assert isinstance(bad, MalformedEvent)
    assert bad.reason == "messaging.sender: Field required"
    assert json.loads(bad.fragment)["message"]["mid"] == "m_bad"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda i: i.pop("timestamp"), "messaging.timestamp: Field required"),
        (lambda i: i.update(timestamp="yesterday"), "messaging.timestamp: Value error"),
        (lambda i: i["message"].pop("mid"), "messaging.message.mid: Field required"),
        (lambda i: i.update(sender={"id": ""}), "messaging.sender.id: String should have at least"),
        (lambda i: i["message"].update(mid="m" * 201), "messaging.message.mid: String should have"),
        (
            lambda i: i["message"].update(attachments=[{"type": "image", "payload": {}}]),
            "messaging.message.attachments.0.payload.url: Field required",
        ),
        (
            lambda i: i.update(read={"when": 1}, message=None),
            "messaging.read.watermark: Field required",
        ),
        (
            lambda i: i.update(reaction={"mid": MID, "action": "react"}, message=None),
            "messaging.reaction.emoji: Field required",
        ),
    ],
)
def test_broken_item_is_malformed_naming_the_field(mutate: Any, reason: str) -> None:
    payload = payload_of("text")
    payload["entry"][0]["time"] = None  # no fallback clock either
    mutate(first_item(payload))
    [event] = parse(encode(payload))
    assert isinstance(event, MalformedEvent), event
    assert event.reason.startswith(reason)


def test_unknown_messaging_event_is_a_notice() -> None:
    payload = payload_of("text")
    item = first_item(payload)
    del item["message"]
    item["optin"] = {"type": "notification_messages", "payload": "x"}
    assert parse(encode(payload)) == [ProviderNotice(title="unsupported messaging event optin")]


def test_unknown_attachment_without_url_is_unsupported() -> None:
    payload = payload_of("text")
    first_item(payload)["message"] = {"mid": MID, "attachments": [{"type": "poll"}]}
    [event] = parse(encode(payload))
    assert isinstance(event, InboundMessage)
    assert event.type is MessageType.UNSUPPORTED
    assert event.error_title == "unknown attachment poll"


def test_fragment_is_truncated() -> None:
    payload = payload_of("text")
    item = first_item(payload)
    del item["sender"]
    item["message"]["text"] = "x" * 5000
    [event] = parse(encode(payload))
    assert isinstance(event, MalformedEvent) and len(event.fragment) == 2000


# --- outbound: Send API ----------------------------------------------------------------------

SEND_URL = f"https://graph.facebook.com/v21.0/{PAGE}/messages"


def connection(api_base_url: str | None = None) -> ChannelConnection:
    return ChannelConnection(
        id=11,
        tenant_id=3,
        type=ChannelType.MESSENGER,
        external_id=PAGE,
        config=ChannelConfig(api_base_url=api_base_url),
        secrets=ChannelSecrets(access_token=TOKEN, app_secret=APP_SECRET),
    )


def outbound(type_: MessageType = MessageType.TEXT, **fields: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=5, tenant_id=3, channel_id=11, recipient=PSID, type=type_, **fields
    )


class FakeSendApi:
    def __init__(self, handler: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler or (
            lambda _: httpx.Response(200, json={"recipient_id": PSID, "message_id": "m_sent1"})
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def send(self, message: OutboundMessage, **kwargs: Any) -> str:
        with httpx.Client(transport=httpx.MockTransport(self)) as http:
            result = ADAPTER.send(message, channel=connection(**kwargs), http=http)
        return result.provider_message_id

    def body(self) -> dict[str, Any]:
        [request] = self.requests
        body: dict[str, Any] = json.loads(request.content)
        return body


def graph_error(code: int, message: str, subcode: int | None = None) -> Any:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "Ab1Cd2"
    return lambda _: httpx.Response(400, json={"error": error})


def test_send_text() -> None:
    api = FakeSendApi()
    assert api.send(outbound(body="Seu pedido saiu para entrega.")) == "m_sent1"
    [request] = api.requests
    assert str(request.url) == SEND_URL
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert api.body() == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Seu pedido saiu para entrega."},
    }


def test_send_reply_names_the_quoted_message() -> None:
    api = FakeSendApi()
    api.send(outbound(body="Esse mesmo", quoted_provider_message_id=MID))
    assert api.body()["reply_to"] == {"mid": MID}


@pytest.mark.parametrize(
    ("type_", "kind"),
    [
        (MessageType.IMAGE, "image"),
        (MessageType.VIDEO, "video"),
        (MessageType.AUDIO, "audio"),
        (MessageType.VOICE, "audio"),
        (MessageType.DOCUMENT, "file"),
    ],
)
def test_send_attachment_by_url(type_: MessageType, kind: str) -> None:
    api = FakeSendApi()
    api.send(outbound(type_, media_url="https://files.test/a"))
    assert api.body()["message"] == {
        "attachment": {
            "type": kind,
            "payload": {"url": "https://files.test/a", "is_reusable": False},
        }
    }


def test_send_uses_the_configured_base_url() -> None:
    api = FakeSendApi()
    api.send(outbound(body="oi"), api_base_url="http://127.0.0.1:8765/v21.0")
    assert str(api.requests[0].url) == f"http://127.0.0.1:8765/v21.0/{PAGE}/messages"


@pytest.mark.parametrize(
    "message",
    [outbound(), outbound(MessageType.IMAGE), outbound(MessageType.TEMPLATE, body="x")],
)
def test_unsendable_message_makes_no_request(message: OutboundMessage) -> None:
    api = FakeSendApi()
    with pytest.raises(InvalidPayloadError):
        api.send(message)
    assert api.requests == []


@pytest.mark.parametrize(
    ("code", "subcode", "text"),
    [
        (10, 2018278, "(#10) This message is sent outside of allowed window."),
        (551, 1545041, "(#551) This person isn't available right now."),
        (100, 2018001, "(#100) No matching user found"),
        (190, 460, "Error validating access token"),
        (200, 2018028, "(#200) Cannot message users who are not admins, developers or testers"),
    ],
)
def test_documented_rejections(code: int, subcode: int, text: str) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        FakeSendApi(graph_error(code, text, subcode)).send(outbound(body="oi"))
    assert caught.value.code == str(code)
    assert text in str(caught.value)


def test_page_rate_limit() -> None:
    with pytest.raises(RateLimitedError) as caught:
        FakeSendApi(graph_error(613, "Calls to this api have exceeded the rate limit.")).send(
            outbound(body="oi")
        )
    assert caught.value.delay_ms == 60_000


def test_temporary_send_failure_is_retried() -> None:
    with pytest.raises(ProviderUnavailableError):
        FakeSendApi(graph_error(1200, "Temporary send message failure")).send(outbound(body="oi"))


def test_connect_error_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnavailableError):
        FakeSendApi(handler).send(outbound(body="oi"))


def test_fetch_media_downloads_the_cdn_url_without_the_token() -> None:
    api = FakeSendApi(
        lambda _: httpx.Response(200, content=b"PNG", headers={"content-type": "x/y"})
    )
    media = Media(type=MessageType.IMAGE, url="https://scontent.xx.fbcdn.net/v/a.png?oh=1")
    with httpx.Client(transport=httpx.MockTransport(api)) as http:
        content = ADAPTER.fetch_media(media, channel=connection(), http=http)
    assert (content.data, content.mime_type) == (b"PNG", "x/y")
    [request] = api.requests
    assert str(request.url) == media.url
    assert "authorization" not in request.headers


def test_fetch_media_of_an_expired_link_is_rejected() -> None:
    api = FakeSendApi(lambda _: httpx.Response(403, text="URL signature expired"))
    media = Media(type=MessageType.IMAGE, url="https://scontent.xx.fbcdn.net/v/a.png?oe=1")
    with (
        httpx.Client(transport=httpx.MockTransport(api)) as http,
        pytest.raises(ProviderRejectedError),
    ):
        ADAPTER.fetch_media(media, channel=connection(), http=http)


def test_fetch_media_without_url_is_invalid() -> None:
    with httpx.Client() as http, pytest.raises(InvalidPayloadError):
        ADAPTER.fetch_media(Media(type=MessageType.IMAGE), channel=connection(), http=http)


# --- channel set-up -------------------------------------------------------------------------

VALID = {
    "page_id": PAGE,
    "access_token": TOKEN,
    "app_secret": APP_SECRET,
    "verify_token": "verify-me-please",
}


def test_setup_routes_by_page_id() -> None:
    external_id, config, secrets = ChannelSetup.model_validate(VALID).to_channel()
    assert external_id == PAGE
    assert config.api_base_url == "https://graph.facebook.com/v21.0"
    assert (secrets.access_token, secrets.app_secret) == (TOKEN, APP_SECRET)
    assert secrets.verify_token == "verify-me-please"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("page_id", "my-page"),
        ("access_token", ""),
        ("app_secret", "short"),
        ("verify_token", "1234567"),
        ("api_base_url", "localhost:8765"),
        ("phone_number_id", PAGE),
    ],
)
def test_setup_rejects_a_bad_field_naming_it(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate({**VALID, field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_setup_requires_the_page_id() -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate({k: v for k, v in VALID.items() if k != "page_id"})
    assert [error["loc"] for error in caught.value.errors()] == [("page_id",)]
