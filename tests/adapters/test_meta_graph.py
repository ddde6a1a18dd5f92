"""Graph API helpers: Meta's documented error objects in, the engine's error classes out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from adapters.meta import graph
from engine.errors import (
    EngineError,
    InvalidPayloadError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
)
from engine.events import ChannelConfig, ChannelConnection, ChannelSecrets, ChannelType

TOKEN = "EAAGm0PX4ZCpsBAKZCv3"
URL = "https://graph.test/v21.0/106540352242922/messages"

Handler = Callable[[httpx.Request], httpx.Response]


class Answer(BaseModel):
    id: str


def client(handler: Handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def graph_error(
    code: int,
    message: str = "An error",
    *,
    subcode: int | None = None,
    kind: str = "OAuthException",
    is_transient: bool | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "A4Zq3mLK2vXbRQ7ytP1s",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if is_transient is not None:
        error["is_transient"] = is_transient
    return {"error": error}


def respond(
    status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def classify(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    request = httpx.Request("POST", URL)
    response = httpx.Response(status, json=body, headers=headers, request=request)
    return graph.error_for(response)


# --- classification by documented code -------------------------------------------------------


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80007, 130429, 131048, 131056])
def test_throttling_codes_are_rate_limits_whatever_the_status(code: int) -> None:
    error = classify(400, graph_error(code, "Rate limit hit"))
    assert type(error) is RateLimitedError
    assert error.delay_ms is not None and error.delay_ms > 0


def test_http_429_without_a_code_is_a_rate_limit() -> None:
    error = classify(429, {})
    assert type(error) is RateLimitedError
    assert error.delay_ms == graph.DEFAULT_RETRY_AFTER_MS


def test_retry_after_header_sets_the_delay() -> None:
    error = classify(429, graph_error(130429), {"Retry-After": "17"})
    assert type(error) is RateLimitedError
    assert error.delay_ms == 17_000


def test_retry_after_of_zero_means_now() -> None:
    error = classify(429, graph_error(4), {"Retry-After": "0"})
    assert error.delay_ms == 0


def test_unreadable_retry_after_falls_back_to_the_default() -> None:
    error = classify(429, graph_error(4), {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert error.delay_ms == graph.DEFAULT_RETRY_AFTER_MS


def test_business_use_case_header_names_the_wait() -> None:
    usage = {"107358231245512": [{"type": "messenger", "estimated_time_to_regain_access": 3}]}
    error = classify(400, graph_error(613), {"X-Business-Use-Case-Usage": json.dumps(usage)})
    assert type(error) is RateLimitedError
    assert error.delay_ms == 180_000


def test_broken_business_use_case_header_is_ignored() -> None:
    error = classify(400, graph_error(32), {"X-Business-Use-Case-Usage": "{not json"})
    assert error.delay_ms == graph.DEFAULT_RETRY_AFTER_MS


def test_pair_rate_limit_waits_for_the_documented_six_seconds() -> None:
    assert classify(400, graph_error(131056)).delay_ms == 6_000


@pytest.mark.parametrize(("status", "code"), [(500, 1), (503, 2), (400, 1200), (503, 131016)])
def test_transient_codes_are_unavailable(status: int, code: int) -> None:
    assert type(classify(status, graph_error(code))) is ProviderUnavailableError


def test_something_went_wrong_is_transient_only_on_a_5xx() -> None:
    assert type(classify(500, graph_error(131000))) is ProviderUnavailableError
    rejected = classify(400, graph_error(131000, "Something went wrong"))
    assert type(rejected) is ProviderRejectedError
    assert rejected.code == "131000"


@pytest.mark.parametrize(
    ("code", "subcode", "message"),
    [
        (100, None, "(#100) Invalid parameter"),
        (190, 463, "Error validating access token: Session has expired"),
        (10, 2018278, "(#10) This message is sent outside of allowed window."),
        (200, None, "(#200) Requires pages_messaging permission"),
        (131026, None, "Message undeliverable"),
        (131047, None, "Re-engagement message"),
        (131051, None, "Unsupported message type"),
        (131052, None, "Media download error"),
        (131053, None, "Media upload error"),
        (132000, None, "Number of parameters does not match the expected number of params"),
        (132001, None, "Template name does not exist in the translation"),
        (133010, None, "Phone number Not Registered"),
        (551, 1545041, "This person isn't available right now."),
        (2018001, None, "No matching user found"),
    ],
)
def test_permanent_codes_are_rejections_carrying_the_code(
    code: int, subcode: int | None, message: str
) -> None:
    error = classify(400, graph_error(code, message, subcode=subcode))
    assert type(error) is ProviderRejectedError
    assert error.code == str(code)
    assert message in str(error)
    assert "A4Zq3mLK2vXbRQ7ytP1s" in str(error)  # fbtrace_id: what Meta support asks for


def test_permanent_code_wins_over_a_5xx_status() -> None:
    assert type(classify(500, graph_error(190))) is ProviderRejectedError


def test_subcode_is_named_in_the_message() -> None:
    error = classify(400, graph_error(10, "outside window", subcode=2018278))
    assert "code 10/2018278" in str(error)


def test_unknown_code_with_is_transient_is_retried() -> None:
    error = classify(400, graph_error(368, is_transient=True))
    assert type(error) is ProviderUnavailableError


@pytest.mark.parametrize(("status", "expected"), [(400, ProviderRejectedError), (502, None)])
def test_unknown_code_falls_back_to_the_http_status(
    status: int, expected: type[EngineError] | None
) -> None:
    error = classify(status, graph_error(131999, "New error"))
    assert type(error) is (expected or ProviderUnavailableError)
    if isinstance(error, ProviderRejectedError):
        assert error.code == "131999"


def test_non_json_5xx_is_unavailable() -> None:
    response = httpx.Response(
        502, text="<html>Bad Gateway</html>", request=httpx.Request("GET", URL)
    )
    assert type(graph.error_for(response)) is ProviderUnavailableError


def test_non_json_4xx_is_rejected_without_a_code() -> None:
    response = httpx.Response(404, text="Not Found", request=httpx.Request("GET", URL))
    error = graph.error_for(response)
    assert type(error) is ProviderRejectedError
    assert error.code is None


def test_long_provider_messages_are_cut() -> None:
    assert len(str(classify(400, graph_error(100, "x" * 5000)))) <= 300


# --- requests --------------------------------------------------------------------------------


def test_post_json_sends_bearer_token_and_json_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return respond(200, {"id": "abc", "extra": True})

    with client(handler) as http:
        answer = graph.post_json(http, URL, token=TOKEN, body={"a": 1}, response_model=Answer)
    assert answer == Answer(id="abc")
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"a": 1}


def test_get_json_sends_params_and_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return respond(200, {"id": "xyz"})

    with client(handler) as http:
        graph.get_json(http, URL, token=TOKEN, params={"fields": "id"}, response_model=Answer)
    assert seen[0].method == "GET"
    assert seen[0].url.params["fields"] == "id"
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_error_response_raises_the_classified_error() -> None:
    with (
        client(lambda _: respond(400, graph_error(131047))) as http,
        pytest.raises(ProviderRejectedError) as caught,
    ):
        graph.post_json(http, URL, token=TOKEN, body={}, response_model=Answer)
    assert caught.value.code == "131047"


def test_unexpected_success_answer_is_invalid_payload_not_a_retry() -> None:
    with (
        client(lambda _: respond(200, {"unexpected": True})) as http,
        pytest.raises(InvalidPayloadError),
    ):
        graph.post_json(http, URL, token=TOKEN, body={}, response_model=Answer)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("peer closed"),
    ],
)
def test_transport_failures_are_unavailable(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with client(handler) as http, pytest.raises(ProviderUnavailableError):
        graph.post_json(http, URL, token=TOKEN, body={}, response_model=Answer)


def test_bad_base_url_is_a_permanent_error() -> None:
    with (
        httpx.Client() as http,
        pytest.raises(ProviderRejectedError, match="invalid Graph API URL"),
    ):
        graph.post_json(http, "ftp://graph.test/x", token=TOKEN, body={}, response_model=Answer)


def test_token_never_appears_in_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with client(handler) as http, pytest.raises(ProviderUnavailableError) as caught:
        graph.post_json(http, URL, token=TOKEN, body={}, response_model=Answer)
    assert TOKEN not in str(caught.value)


# --- downloads ------------------------------------------------------------------------------


def test_download_returns_bytes_and_content_type() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"\xff\xd8jpeg", headers={"content-type": "image/jpeg"})

    with client(handler) as http:
        data, content_type = graph.download(http, "https://cdn.test/a.jpg", token=None)
    assert (data, content_type) == (b"\xff\xd8jpeg", "image/jpeg")
    assert "authorization" not in seen[0].headers


def test_download_refuses_oversized_media(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph, "MAX_MEDIA_BYTES", 10)
    with (
        client(lambda _: httpx.Response(200, content=b"x" * 11)) as http,
        pytest.raises(ProviderRejectedError, match="larger"),
    ):
        graph.download(http, "https://cdn.test/big", token=None)


def test_download_of_an_expired_link_is_rejected() -> None:
    with (
        client(lambda _: httpx.Response(404, text="gone")) as http,
        pytest.raises(ProviderRejectedError),
    ):
        graph.download(http, "https://cdn.test/expired", token=None)


def test_download_timeout_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    with client(handler) as http, pytest.raises(ProviderUnavailableError):
        graph.download(http, "https://cdn.test/slow", token="t")


# --- channel helpers ------------------------------------------------------------------------


def channel(**config: Any) -> ChannelConnection:
    return ChannelConnection(
        id=1,
        tenant_id=1,
        type=ChannelType.WHATSAPP,
        external_id="106540352242922",
        config=ChannelConfig(**config),
        secrets=ChannelSecrets(access_token=TOKEN),
    )


def test_api_base_defaults_to_meta_and_honours_config() -> None:
    assert graph.api_base(channel()) == "https://graph.facebook.com/v21.0"
    assert graph.api_base(channel(api_base_url="http://127.0.0.1:9/v21.0/")) == (
        "http://127.0.0.1:9/v21.0"
    )


def test_missing_access_token_is_a_permanent_error() -> None:
    bare = channel().model_copy(update={"secrets": ChannelSecrets()})
    with pytest.raises(ProviderRejectedError, match="no access token"):
        graph.access_token(bare)
