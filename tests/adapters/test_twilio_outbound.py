"""Twilio SMS adapter, outbound: the exact Messages API request and each documented error."""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
import pytest

from adapters.twilio import ADAPTER
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
)

ACCOUNT_SID = "AC3f8e2b9c4d5a6e7f8091a2b3c4d5e6f7"
AUTH_TOKEN = "9a8b7c6d5e4f30211f2e3d4c5b6a7988"
OUR_NUMBER = "+14155550100"
CUSTOMER = "+14155550123"
BASE = "http://127.0.0.1:8901/twilio"
MESSAGES_URL = f"{BASE}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
BASIC = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
CHANNEL = ChannelConnection(
    id=7,
    tenant_id=1,
    type=ChannelType.SMS,
    external_id=OUR_NUMBER,
    config=ChannelConfig(api_base_url=BASE + "/", account_sid=ACCOUNT_SID),
    secrets=ChannelSecrets(auth_token=AUTH_TOKEN),
)
TEXT = OutboundMessage(
    message_id=1,
    tenant_id=1,
    channel_id=7,
    recipient=CUSTOMER,
    type=MessageType.TEXT,
    body="Your order #4521 ships today.",
)
MEDIA_URL = "https://cdn.flowdesk.example.com/m/label.png"
MEDIA = Media(
    type=MessageType.IMAGE,
    url=f"{BASE}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME1",
    mime_type="image/jpeg",
)
CREATED = {"sid": "SM9f8e7d6c5b4a39281706f5e4d3c2b1a0", "status": "queued", "error_code": None}

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTwilio:
    """Records every request and answers with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def answer(status: int, json: object = None, headers: dict[str, str] | None = None) -> Handler:
    return lambda _: httpx.Response(status, json=json, headers=headers)


def error(code: int, status: int, message: str = "Twilio says no") -> Handler:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return answer(
        status, {"code": code, "message": message, "more_info": more_info, "status": status}
    )


def send(handler: Handler, message: OutboundMessage = TEXT) -> tuple[str, FakeTwilio]:
    fake = FakeTwilio(handler)
    with fake.client() as http:
        result = ADAPTER.send(message, channel=CHANNEL, http=http)
    return result.provider_message_id, fake


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


# --- send -------------------------------------------------------------------------------------


def test_text_is_posted_to_the_messages_resource() -> None:
    sid, fake = send(answer(201, CREATED))
    assert sid == "SM9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    [request] = fake.requests
    assert (request.method, str(request.url)) == ("POST", MESSAGES_URL)
    assert request.headers["authorization"] == BASIC
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(request) == {"To": CUSTOMER, "From": OUR_NUMBER, "Body": TEXT.body}


def test_media_is_sent_by_url_with_its_caption() -> None:
    message = TEXT.model_copy(update={"type": MessageType.IMAGE, "media_url": MEDIA_URL})
    _, fake = send(answer(201, CREATED), message)
    assert form(fake.requests[0]) == {
        "To": CUSTOMER,
        "From": OUR_NUMBER,
        "Body": TEXT.body,
        "MediaUrl": MEDIA_URL,
    }


def test_media_without_caption_sends_no_body() -> None:
    message = TEXT.model_copy(
        update={"type": MessageType.IMAGE, "body": None, "media_url": MEDIA_URL}
    )
    _, fake = send(answer(201, CREATED), message)
    assert "Body" not in form(fake.requests[0])


def test_default_base_url_is_twilios() -> None:
    channel = CHANNEL.model_copy(update={"config": ChannelConfig(account_sid=ACCOUNT_SID)})
    fake = FakeTwilio(answer(201, CREATED))
    with fake.client() as http:
        ADAPTER.send(TEXT, channel=channel, http=http)
    assert str(fake.requests[0].url) == (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    )


def test_message_with_nothing_to_send_is_rejected_without_a_request() -> None:
    template = TEXT.model_copy(update={"type": MessageType.TEMPLATE, "body": None})
    fake = FakeTwilio(answer(201, CREATED))
    with fake.client() as http, pytest.raises(InvalidPayloadError, match="body or a media URL"):
        ADAPTER.send(template, channel=CHANNEL, http=http)
    assert fake.requests == []


@pytest.mark.parametrize(
    "channel",
    [
        CHANNEL.model_copy(update={"config": ChannelConfig(api_base_url=BASE)}),
        CHANNEL.model_copy(update={"secrets": ChannelSecrets()}),
    ],
)
def test_channel_without_credentials_is_rejected(channel: ChannelConnection) -> None:
    fake = FakeTwilio(answer(201, CREATED))
    with fake.client() as http, pytest.raises(ProviderRejectedError, match="account_sid"):
        ADAPTER.send(TEXT, channel=channel, http=http)
    assert fake.requests == []


@pytest.mark.parametrize("body", [{"status": "queued"}, {"sid": ""}, [1], None])
def test_success_without_a_sid_is_not_retried(body: object) -> None:
    # Twilio has the message; a retry would text the customer twice.
    with pytest.raises(ProviderRejectedError, match="no sid"):
        send(answer(201, body))


# --- send: Twilio's documented errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (21211, 400),  # invalid 'To' number
        (21408, 400),  # permission to send to this region not enabled
        (21610, 400),  # recipient replied STOP
        (21612, 400),  # cannot route to this number
        (21614, 400),  # not a mobile number
        (30003, 400),  # unreachable handset
        (30005, 400),  # unknown destination
        (30006, 400),  # landline or unreachable carrier
        (30007, 400),  # carrier filtering
        (20003, 401),  # authentication failed
        (21602, 400),  # any other 4xx code: "Message body is required"
        (20404, 404),  # resource not found
    ],
)
def test_permanent_error_is_rejected_with_twilios_code(code: int, status: int) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        send(error(code, status))
    assert caught.value.code == str(code)
    assert "Twilio says no" in str(caught.value)


def test_rejection_text_does_not_repeat_the_phone_number() -> None:
    message = "The 'To' number +14155550123 is not a valid phone number."
    with pytest.raises(ProviderRejectedError) as caught:
        send(error(21211, 400, message))
    assert "4155550123" not in str(caught.value)
    assert "is not a valid phone number" in str(caught.value)


def test_4xx_without_a_twilio_body_is_rejected_without_a_code() -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        send(answer(400, None))
    assert caught.value.code is None


@pytest.mark.parametrize(
    ("handler", "delay_ms"),
    [
        (lambda _: httpx.Response(429, json={"code": 20429, "status": 429}), 1000),
        (lambda _: httpx.Response(429, headers={"Retry-After": "3"}, text="slow down"), 3000),
        (lambda _: httpx.Response(429, headers={"Retry-After": "0.25"}), 250),
        (lambda _: httpx.Response(429, headers={"Retry-After": "soon"}), 1000),
        (lambda _: httpx.Response(400, json={"code": 20429, "message": "Too Many"}), 1000),
    ],
)
def test_rate_limit_carries_the_retry_after(handler: Handler, delay_ms: int) -> None:
    with pytest.raises(RateLimitedError) as caught:
        send(handler)
    assert caught.value.delay_ms == delay_ms


@pytest.mark.parametrize(
    "handler",
    [
        error(20500, 500),
        error(20503, 503),
        answer(502, None),
        lambda _: httpx.Response(504, text="<html>gateway timeout</html>"),
        answer(302, None),
    ],
)
def test_server_trouble_is_unavailable(handler: Handler) -> None:
    with pytest.raises(ProviderUnavailableError):
        send(handler)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.RemoteProtocolError("broken"),
    ],
)
def test_transport_failure_is_unavailable(exc: httpx.HTTPError) -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(ProviderUnavailableError):
        send(fail)


# --- fetch_media ------------------------------------------------------------------------------


def test_media_is_fetched_with_credentials_and_the_redirect_followed() -> None:
    storage = "https://s3-external-1.amazonaws.com/media.twiliocdn.com/ME1?Signature=x"

    def twilio(request: httpx.Request) -> httpx.Response:
        if request.url.host == "127.0.0.1":
            return httpx.Response(307, headers={"Location": storage})
        return httpx.Response(200, content=b"\xff\xd8jpeg", headers={"Content-Type": "image/jpeg"})

    fake = FakeTwilio(twilio)
    with fake.client() as http:
        content = ADAPTER.fetch_media(MEDIA, channel=CHANNEL, http=http)
    assert (content.data, content.mime_type) == (b"\xff\xd8jpeg", "image/jpeg")
    first, redirected = fake.requests
    assert (first.method, str(first.url)) == ("GET", MEDIA.url)
    assert first.headers["authorization"] == BASIC
    # The storage host must never see the account's credentials.
    assert str(redirected.url) == storage
    assert "authorization" not in redirected.headers


def test_media_mime_type_falls_back_to_the_webhooks() -> None:
    fake = FakeTwilio(lambda _: httpx.Response(200, content=b"\xff\xd8jpeg"))
    with fake.client() as http:
        content = ADAPTER.fetch_media(MEDIA, channel=CHANNEL, http=http)
    assert (content.data, content.mime_type) == (b"\xff\xd8jpeg", "image/jpeg")


def test_missing_media_is_rejected_with_twilios_code() -> None:
    fake = FakeTwilio(error(20404, 404, "The requested resource was not found"))
    with fake.client() as http, pytest.raises(ProviderRejectedError) as caught:
        ADAPTER.fetch_media(MEDIA, channel=CHANNEL, http=http)
    assert caught.value.code == "20404"


def test_media_fetch_timeout_is_unavailable() -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    with FakeTwilio(fail).client() as http, pytest.raises(ProviderUnavailableError):
        ADAPTER.fetch_media(MEDIA, channel=CHANNEL, http=http)


def test_media_without_url_cannot_be_fetched() -> None:
    media = MEDIA.model_copy(update={"url": None})
    with FakeTwilio(answer(200, None)).client() as http, pytest.raises(InvalidPayloadError):
        ADAPTER.fetch_media(media, channel=CHANNEL, http=http)
