"""WhatsApp sends against a fake Cloud API: the exact request, and each documented failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from adapters.whatsapp import ADAPTER
from adapters.whatsapp.setup import ChannelSetup
from engine.errors import (
    InvalidPayloadError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
)
from engine.events import (
    ChannelConfig,
    ChannelConnection,
    ChannelSecrets,
    ChannelType,
    Media,
    MessageType,
    OutboundMessage,
    Template,
)

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAGm0PX4ZCpsBAKZCv3wa"
BASE = "https://graph.facebook.com/v21.0"
MESSAGES_URL = f"{BASE}/{PHONE_NUMBER_ID}/messages"
WAMID = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjdBQ0QxRTlFNjY5QjMyRjNFOAA="
QUOTED = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDMEE4RjM4QjdGMEQ5RDZDMDkA"
RECIPIENT = "5511987654321"

Handler = Callable[[httpx.Request], httpx.Response]


def connection(api_base_url: str | None = None, token: str | None = TOKEN) -> ChannelConnection:
    return ChannelConnection(
        id=7,
        tenant_id=3,
        type=ChannelType.WHATSAPP,
        external_id=PHONE_NUMBER_ID,
        config=ChannelConfig(api_base_url=api_base_url),
        secrets=ChannelSecrets(access_token=token, app_secret="s3cr3t-app"),
    )


def outbound(type_: MessageType = MessageType.TEXT, **fields: Any) -> OutboundMessage:
    defaults: dict[str, Any] = {"body": "Seu pedido saiu para entrega."}
    if type_ is not MessageType.TEXT:
        defaults = {}
    return OutboundMessage(
        message_id=101,
        tenant_id=3,
        channel_id=7,
        recipient=RECIPIENT,
        type=type_,
        **{**defaults, **fields},
    )


def sent_answer() -> httpx.Response:
    # The Cloud API's documented success answer.
    return httpx.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": RECIPIENT, "wa_id": RECIPIENT}],
            "messages": [{"id": WAMID, "message_status": "accepted"}],
        },
    )


class FakeCloudApi:
    """Records every request and answers with the handler given."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler or (lambda _: sent_answer())

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    @property
    def only_json(self) -> dict[str, Any]:
        [request] = self.requests
        body: dict[str, Any] = json.loads(request.content)
        return body


def send(message: OutboundMessage, api: FakeCloudApi, **kwargs: Any) -> str:
    with api.client() as http:
        return ADAPTER.send(message, channel=connection(**kwargs), http=http).provider_message_id


def send_body(message: OutboundMessage) -> dict[str, Any]:
    api = FakeCloudApi()
    assert send(message, api) == WAMID
    return api.only_json


def error(code: int, message: str, status: int = 400, **headers: str) -> Handler:
    body = {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "AGXqnhZkTqzx5u0Vd4tJ0Ru",
        }
    }
    return lambda _: httpx.Response(status, json=body, headers=headers)


# --- request shape ---------------------------------------------------------------------------


def test_text_request_url_auth_and_body() -> None:
    api = FakeCloudApi()
    assert send(outbound(), api) == WAMID
    [request] = api.requests
    assert request.method == "POST"
    assert str(request.url) == MESSAGES_URL
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert api.only_json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": RECIPIENT,
        "type": "text",
        "text": {"body": "Seu pedido saiu para entrega.", "preview_url": False},
    }


def test_reply_carries_the_quoted_message_as_context() -> None:
    body = send_body(outbound(quoted_provider_message_id=QUOTED))
    assert body["context"] == {"message_id": QUOTED}


def test_configured_base_url_is_used() -> None:
    api = FakeCloudApi()
    send(outbound(), api, api_base_url="http://127.0.0.1:8765/graph/v21.0/")
    assert str(api.requests[0].url) == (
        f"http://127.0.0.1:8765/graph/v21.0/{PHONE_NUMBER_ID}/messages"
    )


@pytest.mark.parametrize(
    ("type_", "kind"),
    [
        (MessageType.IMAGE, "image"),
        (MessageType.VIDEO, "video"),
        (MessageType.DOCUMENT, "document"),
    ],
)
def test_captioned_media_by_link(type_: MessageType, kind: str) -> None:
    url = f"https://files.example.test/{kind}"
    body = send_body(outbound(type_, media_url=url, body="Segue o arquivo"))
    assert body["type"] == kind
    assert body[kind] == {"link": url, "caption": "Segue o arquivo"}


def test_document_carries_its_filename() -> None:
    body = send_body(
        outbound(MessageType.DOCUMENT, media_url="https://f.test/nf.pdf", filename="nf-0325.pdf")
    )
    assert body["document"] == {"link": "https://f.test/nf.pdf", "filename": "nf-0325.pdf"}


@pytest.mark.parametrize(
    ("type_", "kind"),
    [(MessageType.AUDIO, "audio"), (MessageType.VOICE, "audio"), (MessageType.STICKER, "sticker")],
)
def test_uncaptioned_media_drops_the_caption(type_: MessageType, kind: str) -> None:
    body = send_body(outbound(type_, media_url="https://f.test/m", body="ignored"))
    assert body["type"] == kind
    assert body[kind] == {"link": "https://f.test/m"}


def test_template_with_body_parameters() -> None:
    template = Template(name="order_shipped", language="pt_BR", parameters=("Ana", "#4521"))
    body = send_body(outbound(MessageType.TEMPLATE, template=template))
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_shipped",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#4521"}],
            }
        ],
    }


def test_template_without_parameters_has_no_components() -> None:
    body = send_body(outbound(MessageType.TEMPLATE, template=Template(name="hello_world")))
    assert body["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


@pytest.mark.parametrize(
    "message",
    [
        outbound(body=None),
        outbound(MessageType.IMAGE),
        outbound(MessageType.TEMPLATE),
        outbound(MessageType.LOCATION),
    ],
)
def test_unsendable_messages_fail_before_any_request(message: OutboundMessage) -> None:
    api = FakeCloudApi()
    with pytest.raises(InvalidPayloadError):
        send(message, api)
    assert api.requests == []


# --- documented failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (131047, "Re-engagement message"),
        (131026, "Message undeliverable"),
        (131051, "Unsupported message type"),
        (132001, "Template name does not exist in the translation"),
        (133010, "Phone number Not Registered"),
        (100, "Invalid parameter"),
    ],
)
def test_permanent_errors_are_rejections_with_the_code(code: int, text: str) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        send(outbound(), FakeCloudApi(error(code, text)))
    assert caught.value.code == str(code)
    assert text in str(caught.value)


def test_expired_token_is_a_rejection() -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        send(outbound(), FakeCloudApi(error(190, "Error validating access token", status=401)))
    assert caught.value.code == "190"


@pytest.mark.parametrize("code", [130429, 131048, 131056, 80007])
def test_throughput_limits_are_rate_limits(code: int) -> None:
    with pytest.raises(RateLimitedError) as caught:
        send(outbound(), FakeCloudApi(error(code, "Rate limit hit")))
    assert caught.value.delay_ms is not None and caught.value.delay_ms > 0


def test_429_with_retry_after() -> None:
    with pytest.raises(RateLimitedError) as caught:
        send(outbound(), FakeCloudApi(error(130429, "Rate limit hit", 429, **{"Retry-After": "5"})))
    assert caught.value.delay_ms == 5_000


@pytest.mark.parametrize(("code", "status"), [(131000, 500), (131016, 503), (2, 500)])
def test_server_side_trouble_is_unavailable(code: int, status: int) -> None:
    with pytest.raises(ProviderUnavailableError):
        send(outbound(), FakeCloudApi(error(code, "Something went wrong", status)))


def test_timeout_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ProviderUnavailableError):
        send(outbound(), FakeCloudApi(handler))


def test_channel_without_token_is_rejected_without_a_request() -> None:
    api = FakeCloudApi()
    with pytest.raises(ProviderRejectedError):
        send(outbound(), api, token=None)
    assert api.requests == []


# --- read receipts and media -----------------------------------------------------------------


def test_mark_read() -> None:
    api = FakeCloudApi(lambda _: httpx.Response(200, json={"success": True}))
    with api.client() as http:
        ADAPTER.mark_read(QUOTED, channel=connection(), http=http)
    [request] = api.requests
    assert str(request.url) == MESSAGES_URL
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert api.only_json == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": QUOTED,
    }


MEDIA_ID = "1003383421387256"
LOOKASIDE = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1003383421387256&ext=1"


def media_api(request: httpx.Request) -> httpx.Response:
    if request.url.path == f"/v21.0/{MEDIA_ID}":
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "url": LOOKASIDE,
                "mime_type": "image/jpeg",
                "sha256": "ZLLDDE6ZzXJCeHtQ3lUa0WNDt9fKdFMYSHy3Nf6VCx4=",
                "file_size": "6",
                "id": MEDIA_ID,
            },
        )
    if str(request.url) == LOOKASIDE:
        return httpx.Response(200, content=b"\xff\xd8\xff\xe0jp", headers={"content-type": "image"})
    return httpx.Response(404)


def test_fetch_media_resolves_the_id_then_downloads_with_the_token() -> None:
    api = FakeCloudApi(media_api)
    media = Media(type=MessageType.IMAGE, provider_media_id=MEDIA_ID, mime_type="image/jpeg")
    with api.client() as http:
        content = ADAPTER.fetch_media(media, channel=connection(), http=http)
    assert content.data == b"\xff\xd8\xff\xe0jp"
    assert content.mime_type == "image/jpeg"
    info, download = api.requests
    assert info.method == "GET"
    assert str(info.url) == f"{BASE}/{MEDIA_ID}?phone_number_id={PHONE_NUMBER_ID}"
    assert str(download.url) == LOOKASIDE
    assert info.headers["authorization"] == download.headers["authorization"] == f"Bearer {TOKEN}"


def test_fetch_media_keeps_the_document_filename() -> None:
    media = Media(type=MessageType.DOCUMENT, provider_media_id=MEDIA_ID, filename="nf.pdf")
    with FakeCloudApi(media_api).client() as http:
        assert ADAPTER.fetch_media(media, channel=connection(), http=http).filename == "nf.pdf"


def test_fetch_media_of_an_unknown_id_is_rejected() -> None:
    api = FakeCloudApi(error(100, "Unsupported get request. Object with ID does not exist"))
    media = Media(type=MessageType.IMAGE, provider_media_id="999")
    with api.client() as http, pytest.raises(ProviderRejectedError) as caught:
        ADAPTER.fetch_media(media, channel=connection(), http=http)
    assert caught.value.code == "100"


def test_fetch_media_download_outage_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == LOOKASIDE:
            return httpx.Response(503, text="unavailable")
        return media_api(request)

    media = Media(type=MessageType.IMAGE, provider_media_id=MEDIA_ID)
    with FakeCloudApi(handler).client() as http, pytest.raises(ProviderUnavailableError):
        ADAPTER.fetch_media(media, channel=connection(), http=http)


def test_fetch_media_without_an_id_is_invalid() -> None:
    with httpx.Client() as http, pytest.raises(InvalidPayloadError):
        ADAPTER.fetch_media(Media(type=MessageType.IMAGE), channel=connection(), http=http)


# --- channel set-up -------------------------------------------------------------------------

VALID = {
    "phone_number_id": PHONE_NUMBER_ID,
    "access_token": TOKEN,
    "app_secret": "0f5c1d9e8b7a6c5d",
    "verify_token": "verify-me-please",
}


def test_setup_gives_routing_id_config_and_secrets() -> None:
    external_id, config, secrets = ChannelSetup.model_validate(VALID).to_channel()
    assert external_id == PHONE_NUMBER_ID
    assert config == ChannelConfig(api_base_url=BASE)
    assert secrets == ChannelSecrets(
        access_token=TOKEN, app_secret="0f5c1d9e8b7a6c5d", verify_token="verify-me-please"
    )


def test_setup_accepts_a_sandbox_base_url() -> None:
    setup = ChannelSetup.model_validate({**VALID, "api_base_url": "http://127.0.0.1:8765/v21.0/"})
    assert setup.to_channel()[1].api_base_url == "http://127.0.0.1:8765/v21.0"


def test_setup_repr_hides_secrets() -> None:
    assert TOKEN not in repr(ChannelSetup.model_validate(VALID))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone_number_id", "+55 11 98765-4321"),
        ("phone_number_id", "12"),
        ("access_token", ""),
        ("app_secret", "short"),
        ("verify_token", "short"),
        ("api_base_url", "graph.facebook.com"),
        ("api_base_url", "ftp://graph.facebook.com"),
        ("unknown_field", "x"),
    ],
)
def test_setup_rejects_a_bad_field_naming_it(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate({**VALID, field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


@pytest.mark.parametrize("field", ["phone_number_id", "access_token", "app_secret", "verify_token"])
def test_setup_requires_each_field(field: str) -> None:
    config = {k: v for k, v in VALID.items() if k != field}
    with pytest.raises(ValidationError) as caught:
        ChannelSetup.model_validate(config)
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]
