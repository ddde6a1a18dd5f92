"""Instagram adapter: Meta's documented `object: instagram` webhooks in, Send API requests out."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from adapters.instagram import ADAPTER
from adapters.instagram.setup import ChannelSetup
from engine.errors import (
    InvalidPayloadError,
    ProviderRejectedError,
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
    MessageType,
    OutboundMessage,
    ProviderNotice,
    Reaction,
    Receipt,
    StatusUpdate,
    WebhookRequest,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "instagram"
IGID = "17841405793187218"
IGID2 = "17841405793187219"
IGSID = "1254459154682919"
IGSID2 = "2034918837115542"
AT = datetime(2025, 6, 8, 20, 59, 43, 123000, tzinfo=UTC)
STORY_CDN = (
    "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18031857439011234&signature=AbStory"
)
APP_SECRET = "1a2b3c4d5e6f7a8b9c0d"
SECRETS = ChannelSecrets(app_secret=APP_SECRET)
TOKEN = "EAAPageTokenForIgZCv3"


def req(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return WebhookRequest(body=body, headers=lowered, url="https://example.test/webhooks/ig/1")


def body_of(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def payload_of(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(body_of(name))
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def parse(body: bytes, address_id: str = IGID) -> list[InboundEvent]:
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


def mid_of(name: str) -> str:
    mid: str = payload_of(name)["entry"][0]["messaging"][0]["message"]["mid"]
    return mid


# --- signature, envelope, addressing ---------------------------------------------------------


def test_adapter_is_for_instagram() -> None:
    assert ADAPTER.channel_type is ChannelType.INSTAGRAM


def test_valid_signature_passes() -> None:
    body = body_of("text")
    ADAPTER.verify(req(body, {"X-Hub-Signature-256": signature(body)}), SECRETS)


def test_wrong_signature_is_rejected() -> None:
    body = body_of("text")
    with pytest.raises(SignatureMismatchError):
        ADAPTER.verify(req(body, {"X-Hub-Signature-256": signature(body, "nope")}), SECRETS)


def test_address_ids_are_the_instagram_account_ids() -> None:
    assert ADAPTER.address_ids(req(body_of("batch"))) == {IGID, IGID2}


def test_a_page_webhook_is_not_instagram() -> None:
    with pytest.raises(InvalidPayloadError, match="not a Meta 'instagram' webhook"):
        ADAPTER.address_ids(req(body_of("text").replace(b'"instagram"', b'"page"')))


def test_dedupe_key_is_the_body_hash() -> None:
    body = body_of("text")
    assert ADAPTER.dedupe_key(req(body)) == "sha256:" + hashlib.sha256(body).hexdigest()


# --- messages --------------------------------------------------------------------------------


def test_text() -> None:
    message = only_message("text")
    assert message.type is MessageType.TEXT
    assert message.body == "Oi! Vocês entregam em Curitiba?"
    assert message.provider_message_id == mid_of("text")
    assert message.provider_timestamp == AT
    assert message.sender.external_id == IGSID
    assert (message.sender.phone, message.sender.name) == (None, None)


def test_image() -> None:
    message = only_message("image")
    assert message.type is MessageType.IMAGE
    [media] = message.media
    assert media.url is not None and media.url.startswith("https://lookaside.fbsbx.com/")


def test_several_attachments_are_one_message() -> None:
    message = only_message("attachments")
    assert [m.type for m in message.media] == [
        MessageType.IMAGE,
        MessageType.IMAGE,
        MessageType.VIDEO,
        MessageType.AUDIO,
    ]
    assert len({m.url for m in message.media}) == 4


def test_story_mention() -> None:
    message = only_message("story_mention")
    assert message.type is MessageType.STORY_MENTION
    assert message.story_url == STORY_CDN
    assert message.media == ()  # the story is the customer's: a link, never a file we store
    assert message.body is None


def test_story_reply() -> None:
    message = only_message("story_reply")
    assert message.type is MessageType.TEXT
    assert message.body == "Quero essa caneca!"
    assert message.story_url == STORY_CDN
    assert message.quoted_provider_message_id is None


def test_reply_to_a_message() -> None:
    message = only_message("reply")
    assert message.quoted_provider_message_id == mid_of("echo")
    assert message.story_url is None


def test_quick_reply() -> None:
    message = only_message("quick_reply")
    assert message.type is MessageType.INTERACTIVE
    assert (message.reply_id, message.body) == ("SHIPPING_EXPRESS", "Entrega expressa")


def test_shared_reel_is_a_link() -> None:
    message = only_message("share")
    assert message.type is MessageType.TEXT
    assert message.body == "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=reel1"


def test_unsupported_content() -> None:
    message = only_message("unsupported")
    assert message.type is MessageType.UNSUPPORTED
    assert message.error_title == "unsupported by Meta"


def test_postback_from_an_icebreaker() -> None:
    message = only_message("postback")
    assert message.type is MessageType.BUTTON
    postback = payload_of("postback")["entry"][0]["messaging"][0]["postback"]
    assert message.provider_message_id == postback["mid"]
    assert (message.reply_id, message.body) == ("SHOW_CATALOG", "Ver catálogo")


def test_unsend_is_a_delete() -> None:
    event = only("unsend")
    assert isinstance(event, MessageDelete)
    assert event.provider_message_id == mid_of("unsend")
    assert event.sender.external_id == IGSID


def test_message_from_an_ad_carries_the_referral() -> None:
    message = only_message("ad_message")
    assert message.body == "Tenho interesse na promoção"
    assert message.referral is not None
    assert (message.referral.source_type, message.referral.source_id) == (
        "ads",
        "120226305854810999",
    )
    assert message.referral.headline == "Canecas com 20% off"


def test_standalone_referral() -> None:
    message = only_message("referral")
    assert message.provider_message_id.startswith("referral:")
    assert message.referral is not None and message.referral.source_type == "ads"
    assert message == only_message("referral")  # redelivery: same synthetic id


# --- reactions, receipts, echoes -------------------------------------------------------------


def test_reaction() -> None:
    event = only("reaction")
    assert isinstance(event, Reaction)
    assert event.emoji == "❤️"
    assert event.target_provider_message_id == mid_of("echo")


def test_unreact_without_emoji() -> None:
    event = only("reaction_removed")
    assert isinstance(event, Reaction)
    assert event.emoji is None
    assert event.target_provider_message_id == mid_of("echo")


def test_unknown_reaction_action_is_a_notice() -> None:
    payload = payload_of("reaction")
    payload["entry"][0]["messaging"][0]["reaction"]["action"] = "super_react"
    assert parse(encode(payload)) == [ProviderNotice(title="reaction action super_react")]


def test_read_names_the_message() -> None:
    event = only("read")
    assert isinstance(event, Receipt)
    assert event.status is DeliveryStatus.READ
    assert event.provider_message_ids == (mid_of("echo"),)
    assert event.watermark is None
    assert event.provider_timestamp == AT


def test_echo_is_a_sent_status() -> None:
    event = only("echo")
    assert event == StatusUpdate(
        provider_message_id=mid_of("echo"),
        provider_timestamp=AT,
        recipient_id=IGSID,
        status=DeliveryStatus.SENT,
    )


# --- batches, other fields, malformed parts --------------------------------------------------


def test_batch_for_the_first_account() -> None:
    events = parse(body_of("batch"))
    assert [type(e) for e in events] == [InboundMessage, InboundMessage, Receipt]
    text, mention, _ = events
    assert isinstance(text, InboundMessage) and text.body == "Primeira"
    assert isinstance(mention, InboundMessage)
    assert (mention.type, mention.sender.external_id) == (MessageType.STORY_MENTION, IGSID2)


def test_batch_for_the_second_account() -> None:
    [message] = parse(body_of("batch"), IGID2)
    assert isinstance(message, InboundMessage) and message.body == "Outra conta"


def test_comment_changes_are_notices() -> None:
    payload = payload_of("text")
    entry = payload["entry"][0]
    del entry["messaging"]
    entry["changes"] = [{"field": "comments", "value": {"id": "17865799348089039", "text": "oi"}}]
    assert parse(encode(payload)) == [ProviderNotice(title="unsupported field comments")]


def test_message_without_mid_is_malformed_and_spares_its_neighbour() -> None:
    good, bad = parse(body_of("malformed"))
    assert isinstance(good, InboundMessage) and good.body == "Essa chegou certinho"
    assert isinstance(bad, MalformedEvent)
    assert bad.reason == "messaging.message.mid: Field required"


def test_single_attachment_object_is_read_as_a_list() -> None:
    payload = payload_of("image")
    message = payload["entry"][0]["messaging"][0]["message"]
    message["attachments"] = message["attachments"][0]
    [event] = parse(encode(payload))
    assert isinstance(event, InboundMessage) and event.type is MessageType.IMAGE


# --- outbound --------------------------------------------------------------------------------


def connection(api_base_url: str | None = None) -> ChannelConnection:
    return ChannelConnection(
        id=12,
        tenant_id=3,
        type=ChannelType.INSTAGRAM,
        external_id=IGID,
        config=ChannelConfig(api_base_url=api_base_url),
        secrets=ChannelSecrets(access_token=TOKEN, app_secret=APP_SECRET),
    )


def outbound(type_: MessageType = MessageType.TEXT, **fields: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=9, tenant_id=3, channel_id=12, recipient=IGSID, type=type_, **fields
    )


Handler = Callable[[httpx.Request], httpx.Response]


def sent(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"recipient_id": IGSID, "message_id": "aWdfZAG1fsent"})


def run_send(
    message: OutboundMessage, handler: Handler = sent, base: str | None = None
) -> tuple[str, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    with httpx.Client(transport=httpx.MockTransport(record)) as http:
        result = ADAPTER.send(message, channel=connection(base), http=http)
    return result.provider_message_id, seen


def test_send_text_to_the_account_messages_edge() -> None:
    mid, [request] = run_send(outbound(body="Entregamos sim!"))
    assert mid == "aWdfZAG1fsent"
    assert str(request.url) == f"https://graph.facebook.com/v21.0/{IGID}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {
        "recipient": {"id": IGSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Entregamos sim!"},
    }


def test_send_image_as_a_reply_through_instagram_login_host() -> None:
    message = outbound(
        MessageType.IMAGE,
        media_url="https://files.test/caneca.jpg",
        quoted_provider_message_id=mid_of("text"),
    )
    _, [request] = run_send(message, base="https://graph.instagram.com/v21.0")
    assert str(request.url) == f"https://graph.instagram.com/v21.0/{IGID}/messages"
    body = json.loads(request.content)
    assert body["message"] == {
        "attachment": {
            "type": "image",
            "payload": {"url": "https://files.test/caneca.jpg", "is_reusable": False},
        }
    }
    assert body["reply_to"] == {"mid": mid_of("text")}


def error(code: int, subcode: int, message: str) -> Handler:
    body = {
        "error": {
            "message": message,
            "type": "IGApiException",
            "code": code,
            "error_subcode": subcode,
            "fbtrace_id": "AvX9kQ",
        }
    }
    return lambda _: httpx.Response(400, json=body)


def test_outside_the_messaging_window_is_rejected() -> None:
    handler = error(10, 2534022, "This message is sent outside of allowed window.")
    with pytest.raises(ProviderRejectedError) as caught:
        run_send(outbound(body="oi"), handler)
    assert caught.value.code == "10"


def test_unknown_user_is_rejected() -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        run_send(outbound(body="oi"), error(100, 2534014, "No matching user found"))
    assert caught.value.code == "100"


def test_instagram_rate_limit() -> None:
    with pytest.raises(RateLimitedError):
        run_send(outbound(body="oi"), error(80007, 2534050, "Rate limit hit"))


def test_fetch_media_of_a_story_link() -> None:
    seen: list[httpx.Request] = []

    def cdn(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"MP4", headers={"content-type": "video/mp4"})

    media = Media(type=MessageType.VIDEO, url=STORY_CDN)
    with httpx.Client(transport=httpx.MockTransport(cdn)) as http:
        content = ADAPTER.fetch_media(media, channel=connection(), http=http)
    assert (content.data, content.mime_type) == (b"MP4", "video/mp4")
    assert "authorization" not in seen[0].headers


# --- channel set-up -------------------------------------------------------------------------

VALID = {
    "ig_account_id": IGID,
    "access_token": TOKEN,
    "app_secret": APP_SECRET,
    "verify_token": "verify-me-please",
}


def test_setup_routes_by_instagram_account_id() -> None:
    external_id, config, secrets = ChannelSetup.model_validate(VALID).to_channel()
    assert external_id == IGID
    assert config == ChannelConfig(api_base_url="https://graph.facebook.com/v21.0")
    assert secrets == ChannelSecrets(
        access_token=TOKEN, app_secret=APP_SECRET, verify_token="verify-me-please"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ig_account_id", "@minhaloja"),
        ("access_token", ""),
        ("app_secret", "1234"),
        ("verify_token", ""),
        ("api_base_url", "//graph.instagram.com"),
        ("page_id", "107358231245512"),
    ],
)
def test_setup_rejects_a_bad_field_naming_it(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate({**VALID, field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_setup_requires_the_account_id() -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate({k: v for k, v in VALID.items() if k != "ig_account_id"})
    assert [error["loc"] for error in caught.value.errors()] == [("ig_account_id",)]
