"""Telegram adapter, outbound: the exact Bot API requests, and each documented error translated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.telegram import ADAPTER
from engine.errors import (
    InvalidPayloadError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
    RecipientMovedError,
)
from engine.events import (
    ChannelConfig,
    ChannelConnection,
    ChannelSecrets,
    ChannelType,
    Media,
    MessageType,
    OutboundMessage,
    SendResult,
)

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
BASE = "http://127.0.0.1:8081/telegram"
CHANNEL = ChannelConnection(
    id=3,
    tenant_id=1,
    type=ChannelType.TELEGRAM,
    external_id="7012345678",
    config=ChannelConfig(api_base_url=BASE + "/"),
    secrets=ChannelSecrets(bot_token=TOKEN, webhook_secret="s3cr3t"),
)


def ok(message_id: int = 4600, chat_id: int = 123456789) -> httpx.Response:
    result = {"message_id": message_id, "date": 1749417000, "chat": {"id": chat_id}}
    return httpx.Response(200, json={"ok": True, "result": result})


def failed(code: int, description: str, **parameters: int) -> httpx.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return httpx.Response(code, json=body)


class FakeTelegram:
    """A Bot API twin: records each request, answers with the next canned response."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def json(self, index: int = 0) -> Any:
        return json.loads(self.requests[index].content)


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
def http(fake: FakeTelegram) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(fake)) as client:
        yield client


def outbound(**fields: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "message_id": 77,
        "tenant_id": 1,
        "channel_id": 3,
        "recipient": "123456789",
        "type": MessageType.TEXT,
        "body": "Seu pedido sai hoje.",
    }
    return OutboundMessage(**(base | fields))


def send(fake: FakeTelegram, http: httpx.Client, *answers: Any, **fields: Any) -> SendResult:
    fake.responses.extend(answers or [ok()])
    return ADAPTER.send(outbound(**fields), channel=CHANNEL, http=http)


# --- requests --------------------------------------------------------------------------------


def test_text_is_sent_with_send_message(fake: FakeTelegram, http: httpx.Client) -> None:
    result = send(fake, http)
    [request] = fake.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/bot{TOKEN}/sendMessage"
    assert request.headers["content-type"] == "application/json"
    assert fake.json() == {"chat_id": 123456789, "text": "Seu pedido sai hoje."}
    assert result == SendResult(provider_message_id="123456789:4600")


def test_reply_quotes_only_the_message_part(fake: FakeTelegram, http: httpx.Client) -> None:
    send(fake, http, quoted_provider_message_id="123456789:4531")
    assert fake.json()["reply_parameters"] == {
        "message_id": 4531,
        "allow_sending_without_reply": True,
    }


def test_group_reply_goes_to_the_negative_chat_id(fake: FakeTelegram, http: httpx.Client) -> None:
    result = send(
        fake,
        http,
        ok(1300, -1001234567890),
        recipient="-1001234567890",
        quoted_provider_message_id="-1001234567890:1204",
    )
    assert fake.json()["chat_id"] == -1001234567890
    assert fake.json()["reply_parameters"]["message_id"] == 1204
    assert result.provider_message_id == "-1001234567890:1300"


@pytest.mark.parametrize("quoted", ["cb:4382519863247891234", "4531", "chat:4531", "1:x"])
def test_quote_that_is_no_telegram_message_is_dropped(
    fake: FakeTelegram, http: httpx.Client, quoted: str
) -> None:
    send(fake, http, quoted_provider_message_id=quoted)
    assert "reply_parameters" not in fake.json()


def test_username_recipient_stays_a_string(fake: FakeTelegram, http: httpx.Client) -> None:
    send(fake, http, recipient="@suporte_loja")
    assert fake.json()["chat_id"] == "@suporte_loja"


@pytest.mark.parametrize(
    ("kind", "method", "field"),
    [
        (MessageType.IMAGE, "sendPhoto", "photo"),
        (MessageType.VIDEO, "sendVideo", "video"),
        (MessageType.AUDIO, "sendAudio", "audio"),
        (MessageType.VOICE, "sendVoice", "voice"),
        (MessageType.DOCUMENT, "sendDocument", "document"),
    ],
)
def test_media_is_sent_by_url_with_its_caption(
    fake: FakeTelegram, http: httpx.Client, kind: MessageType, method: str, field: str
) -> None:
    url = "https://cdn.example/files/nota.pdf"
    send(fake, http, type=kind, media_url=url, body="Segue o arquivo", filename="nota.pdf")
    assert str(fake.requests[0].url) == f"{BASE}/bot{TOKEN}/{method}"
    assert fake.json() == {"chat_id": 123456789, field: url, "caption": "Segue o arquivo"}


def test_media_without_body_has_no_caption(fake: FakeTelegram, http: httpx.Client) -> None:
    send(fake, http, type=MessageType.IMAGE, media_url="https://cdn.example/a.jpg", body=None)
    assert fake.json() == {"chat_id": 123456789, "photo": "https://cdn.example/a.jpg"}


def test_sticker_takes_no_caption(fake: FakeTelegram, http: httpx.Client) -> None:
    send(fake, http, type=MessageType.STICKER, media_url="https://cdn.example/s.webp")
    assert str(fake.requests[0].url).endswith("/sendSticker")
    assert fake.json() == {"chat_id": 123456789, "sticker": "https://cdn.example/s.webp"}


def test_media_without_url_is_rejected_before_any_request(
    fake: FakeTelegram, http: httpx.Client
) -> None:
    with pytest.raises(ProviderRejectedError, match="needs a media_url") as caught:
        ADAPTER.send(outbound(type=MessageType.IMAGE), channel=CHANNEL, http=http)
    assert caught.value.code == "no_media_url"
    assert fake.requests == []


@pytest.mark.parametrize("kind", [MessageType.TEMPLATE, MessageType.INTERACTIVE])
def test_types_telegram_cannot_send_are_rejected(
    fake: FakeTelegram, http: httpx.Client, kind: MessageType
) -> None:
    with pytest.raises(ProviderRejectedError, match="cannot send") as caught:
        ADAPTER.send(outbound(type=kind), channel=CHANNEL, http=http)
    assert caught.value.code == "unsupported_type"
    assert fake.requests == []


def test_channel_without_bot_token_is_rejected(fake: FakeTelegram, http: httpx.Client) -> None:
    channel = CHANNEL.model_copy(update={"secrets": ChannelSecrets(webhook_secret="s")})
    with pytest.raises(ProviderRejectedError, match="no bot token") as caught:
        ADAPTER.send(outbound(), channel=channel, http=http)
    assert caught.value.code == "no_bot_token"
    assert fake.requests == []


def test_default_base_url_is_telegrams(fake: FakeTelegram, http: httpx.Client) -> None:
    fake.responses.append(ok())
    channel = CHANNEL.model_copy(update={"config": ChannelConfig()})
    ADAPTER.send(outbound(), channel=channel, http=http)
    assert str(fake.requests[0].url) == f"https://api.telegram.org/bot{TOKEN}/sendMessage"


# --- documented errors -----------------------------------------------------------------------


def test_flood_wait_is_rate_limited_for_retry_after(fake: FakeTelegram, http: httpx.Client) -> None:
    with pytest.raises(RateLimitedError) as caught:
        send(fake, http, failed(429, "Too Many Requests: retry after 17", retry_after=17))
    assert caught.value.delay_ms == 17_000


def test_rate_limit_without_parameters_uses_retry_after_header(
    fake: FakeTelegram, http: httpx.Client
) -> None:
    answer = httpx.Response(
        429, headers={"Retry-After": "3"}, json={"ok": False, "error_code": 429, "description": "x"}
    )
    with pytest.raises(RateLimitedError) as caught:
        send(fake, http, answer)
    assert caught.value.delay_ms == 3000


def test_group_upgraded_to_supergroup_moves_the_recipient(
    fake: FakeTelegram, http: httpx.Client
) -> None:
    answer = failed(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=-1001234567890,
    )
    with pytest.raises(RecipientMovedError) as caught:
        send(fake, http, answer, recipient="-4012345678")
    assert caught.value.new_recipient == "-1001234567890"


@pytest.mark.parametrize(
    ("code", "description"),
    [
        (403, "Forbidden: bot was blocked by the user"),
        (403, "Forbidden: user is deactivated"),
        (403, "Forbidden: bot was kicked from the group chat"),
        (400, "Bad Request: chat not found"),
        (400, "Bad Request: message text is empty"),
        (400, "Bad Request: wrong file identifier/HTTP URL specified"),
        (401, "Unauthorized"),
        (404, "Not Found"),
    ],
)
def test_permanent_errors_are_rejected_with_telegrams_code(
    fake: FakeTelegram, http: httpx.Client, code: int, description: str
) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        send(fake, http, failed(code, description))
    assert caught.value.code == str(code)
    assert description in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_error_code_in_the_body_wins_over_the_http_status(
    fake: FakeTelegram, http: httpx.Client
) -> None:
    answer = httpx.Response(
        200, json={"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"}
    )
    with pytest.raises(ProviderRejectedError) as caught:
        send(fake, http, answer)
    assert caught.value.code == "403"


@pytest.mark.parametrize(
    "answer",
    [
        failed(500, "Internal Server Error"),
        failed(502, "Bad Gateway"),
        httpx.Response(502, text="<html>502 Bad Gateway</html>"),
        httpx.Response(503),
    ],
)
def test_server_errors_are_unavailable(
    fake: FakeTelegram, http: httpx.Client, answer: httpx.Response
) -> None:
    with pytest.raises(ProviderUnavailableError):
        send(fake, http, answer)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("peer closed"),
    ],
)
def test_network_failures_are_unavailable(
    fake: FakeTelegram, http: httpx.Client, exc: Exception
) -> None:
    with pytest.raises(ProviderUnavailableError) as caught:
        send(fake, http, exc)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "base_url", ["api.telegram.org", "ftp://api.telegram.org", "http://exa\x00mple.test"]
)
def test_misconfigured_base_url_is_rejected(base_url: str) -> None:
    channel = CHANNEL.model_copy(update={"config": ChannelConfig(api_base_url=base_url)})
    # A real client: httpx refuses these URLs before opening any connection.
    with httpx.Client() as real, pytest.raises(ProviderRejectedError) as caught:
        ADAPTER.send(outbound(), channel=channel, http=real)
    assert caught.value.code == "bad_base_url"


def test_non_json_client_error_is_rejected_by_status(
    fake: FakeTelegram, http: httpx.Client
) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        send(fake, http, httpx.Response(413, text="Request Entity Too Large"))
    assert caught.value.code == "413"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"ok": True, "result": True}),
    ],
)
def test_success_without_a_message_is_invalid(
    fake: FakeTelegram, http: httpx.Client, answer: httpx.Response
) -> None:
    with pytest.raises(InvalidPayloadError):
        send(fake, http, answer)


# --- media download --------------------------------------------------------------------------


def voice() -> Media:
    return Media(type=MessageType.VOICE, provider_media_id="AwACAgEAAxkBAAIBRGZvoiceXYZ")


def test_fetch_media_asks_get_file_then_downloads(fake: FakeTelegram, http: httpx.Client) -> None:
    file = {
        "file_id": "AwAC",
        "file_unique_id": "AgAD",
        "file_size": 5,
        "file_path": "voice/file_7.oga",
    }
    fake.responses += [
        httpx.Response(200, json={"ok": True, "result": file}),
        httpx.Response(200, content=b"OggS\x00"),
    ]
    content = ADAPTER.fetch_media(voice(), channel=CHANNEL, http=http)
    get_file, download = fake.requests
    assert str(get_file.url) == f"{BASE}/bot{TOKEN}/getFile"
    assert fake.json(0) == {"file_id": "AwACAgEAAxkBAAIBRGZvoiceXYZ"}
    assert (download.method, str(download.url)) == (
        "GET",
        f"{BASE}/file/bot{TOKEN}/voice/file_7.oga",
    )
    assert content.data == b"OggS\x00"
    assert (content.mime_type, content.filename) == ("audio/ogg", "file_7.oga")


def test_fetch_media_keeps_the_known_mime_type_and_name(
    fake: FakeTelegram, http: httpx.Client
) -> None:
    file = {"file_id": "BQAC", "file_path": "documents/file_9.pdf"}
    fake.responses += [
        httpx.Response(200, json={"ok": True, "result": file}),
        httpx.Response(200, content=b"%PDF"),
    ]
    media = Media(
        type=MessageType.DOCUMENT,
        provider_media_id="BQAC",
        mime_type="application/pdf",
        filename="nota-fiscal-0325.pdf",
    )
    content = ADAPTER.fetch_media(media, channel=CHANNEL, http=http)
    assert (content.mime_type, content.filename) == ("application/pdf", "nota-fiscal-0325.pdf")


def test_file_too_big_is_rejected(fake: FakeTelegram, http: httpx.Client) -> None:
    fake.responses.append(failed(400, "Bad Request: file is too big"))
    with pytest.raises(ProviderRejectedError) as caught:
        ADAPTER.fetch_media(voice(), channel=CHANNEL, http=http)
    assert caught.value.code == "400"


def test_download_server_error_is_unavailable(fake: FakeTelegram, http: httpx.Client) -> None:
    file = {"file_id": "AwAC", "file_path": "voice/file_7.oga"}
    fake.responses += [httpx.Response(200, json={"ok": True, "result": file}), httpx.Response(502)]
    with pytest.raises(ProviderUnavailableError):
        ADAPTER.fetch_media(voice(), channel=CHANNEL, http=http)


def test_download_timeout_is_unavailable(fake: FakeTelegram, http: httpx.Client) -> None:
    file = {"file_id": "AwAC", "file_path": "voice/file_7.oga"}
    fake.responses += [
        httpx.Response(200, json={"ok": True, "result": file}),
        httpx.ReadTimeout("slow"),
    ]
    with pytest.raises(ProviderUnavailableError):
        ADAPTER.fetch_media(voice(), channel=CHANNEL, http=http)


def test_get_file_without_path_is_rejected(fake: FakeTelegram, http: httpx.Client) -> None:
    fake.responses.append(httpx.Response(200, json={"ok": True, "result": {"file_id": "AwAC"}}))
    with pytest.raises(ProviderRejectedError, match="no file_path") as caught:
        ADAPTER.fetch_media(voice(), channel=CHANNEL, http=http)
    assert caught.value.code == "no_file_path"


def test_media_without_file_id_is_rejected(fake: FakeTelegram, http: httpx.Client) -> None:
    with pytest.raises(ProviderRejectedError, match="no Telegram file_id") as caught:
        ADAPTER.fetch_media(Media(type=MessageType.IMAGE), channel=CHANNEL, http=http)
    assert caught.value.code == "no_file_id"
    assert fake.requests == []


@pytest.mark.parametrize("header", ["soon", "1.5", "-1"])
def test_unreadable_retry_after_leaves_the_delay_to_the_retry_policy(
    fake: FakeTelegram, http: httpx.Client, header: str
) -> None:
    body = {"ok": False, "error_code": 429, "description": "Too Many Requests"}
    with pytest.raises(RateLimitedError) as caught:
        send(fake, http, httpx.Response(429, headers={"Retry-After": header}, json=body))
    assert caught.value.delay_ms is None


# --- edits and deletions of sent messages ----------------------------------------------------


def edited(fake: FakeTelegram, http: httpx.Client, *answers: Any, **fields: Any) -> None:
    fake.responses.extend(answers or [httpx.Response(200, json={"ok": True, "result": True})])
    args: dict[str, Any] = {"body": "Corrigido: sai amanhã.", "message_type": "text"} | fields
    ADAPTER.edit_message("-100200:4600", channel=CHANNEL, http=http, **args)


def test_text_is_edited_with_edit_message_text(fake: FakeTelegram, http: httpx.Client) -> None:
    edited(fake, http)
    assert fake.requests[0].url == f"{BASE}/bot{TOKEN}/editMessageText"
    assert fake.json() == {"chat_id": -100200, "message_id": 4600, "text": "Corrigido: sai amanhã."}


def test_media_caption_is_edited_with_edit_message_caption(
    fake: FakeTelegram, http: httpx.Client
) -> None:
    edited(fake, http, message_type="image")
    assert fake.requests[0].url.path.endswith("/editMessageCaption")
    assert fake.json()["caption"] == "Corrigido: sai amanhã."


def test_a_sticker_has_nothing_to_edit(fake: FakeTelegram, http: httpx.Client) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        edited(fake, http, message_type="sticker")
    assert caught.value.code == "unsupported_type"
    assert fake.requests == []


def test_an_edit_to_the_same_text_counts_as_done(fake: FakeTelegram, http: httpx.Client) -> None:
    edited(fake, http, failed(400, "Bad Request: message is not modified: specified new message"))
    assert len(fake.requests) == 1


def test_other_edit_refusals_carry_telegrams_code(fake: FakeTelegram, http: httpx.Client) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        edited(fake, http, failed(400, "Bad Request: message can't be edited"))
    assert caught.value.code == "400"


def test_delete_uses_delete_message(fake: FakeTelegram, http: httpx.Client) -> None:
    fake.responses.append(httpx.Response(200, json={"ok": True, "result": True}))
    ADAPTER.delete_message("123456789:4600", channel=CHANNEL, http=http)
    assert fake.requests[0].url.path.endswith("/deleteMessage")
    assert fake.json() == {"chat_id": 123456789, "message_id": 4600}


@pytest.mark.parametrize("provider_id", ["cb:991", "4600", "abc:def", ""])
def test_ids_that_are_no_chat_message_are_refused_before_any_request(
    fake: FakeTelegram, http: httpx.Client, provider_id: str
) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        ADAPTER.delete_message(provider_id, channel=CHANNEL, http=http)
    assert caught.value.code == "not_a_message"
    assert fake.requests == []
