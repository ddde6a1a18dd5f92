"""Graph API client helpers shared by Meta's channels: authenticated calls, error classification."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TypeVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from engine.errors import (
    EngineError,
    InvalidPayloadError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
)
from engine.events import ChannelConnection

log = logging.getLogger(__name__)

GRAPH_BASE_URL = "https://graph.facebook.com/v21.0"
GRAPH_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# Media downloads are bigger than API calls; a slow CDN should not look like an outage.
MEDIA_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
# WhatsApp's largest media (documents) is 100 MB; anything past that is not a media file.
MAX_MEDIA_BYTES = 100 * 1024 * 1024
DEFAULT_RETRY_AFTER_MS = 60_000
_TEXT_MAX_CHARS = 300

# Error codes, from Meta's documented error references: Graph API "Handling Errors",
# Messenger Platform "Error Codes" (also used by Instagram messaging) and WhatsApp Cloud API
# "Error Codes". Classification is by these codes; HTTP status only decides the unknown ones.
THROTTLING_CODES: frozenset[int] = frozenset(
    {
        4,  # application request limit reached
        17,  # user request limit reached
        32,  # page request limit reached
        613,  # calls within one hour exceeded
        80007,  # WhatsApp Business Account / Instagram rate limit
        130429,  # WhatsApp: Cloud API throughput reached
        131048,  # WhatsApp: spam rate limit hit
        131056,  # WhatsApp: pair rate limit (same sender and recipient)
    }
)
TRANSIENT_CODES: frozenset[int] = frozenset(
    {
        1,  # API unknown: "possibly a temporary issue due to downtime"
        2,  # API service: temporary issue due to downtime
        1200,  # Messenger: temporary send message failure
        131016,  # WhatsApp: service unavailable
        131057,  # WhatsApp: business account in maintenance mode
    }
)
# WhatsApp 131000 "something went wrong" is only worth retrying when the server says so (5xx).
TRANSIENT_WHEN_5XX: frozenset[int] = frozenset({131000})
PERMANENT_CODES: frozenset[int] = frozenset(
    {
        10,  # permission denied; Messenger/IG subcode 2018278: outside the messaging window
        100,  # invalid parameter (subcode 2018001: no matching user)
        190,  # access token invalid or expired
        200,  # permission error
        551,  # Messenger: this person isn't available right now
        2018001,  # Messenger: no matching user found
        131026,  # WhatsApp: message undeliverable
        131047,  # WhatsApp: re-engagement message (outside the 24-hour window)
        131051,  # WhatsApp: unsupported message type
        131052,  # WhatsApp: media download error
        131053,  # WhatsApp: media upload error
        132000,  # WhatsApp: template parameter count mismatch
        132001,  # WhatsApp: template does not exist
        133010,  # WhatsApp: phone number not registered
    }
)
# WhatsApp's pair limit allows one message every 6 s to the same user; waiting a minute is waste.
THROTTLE_DELAY_MS: Mapping[int, int] = {131056: 6_000}

_Model = TypeVar("_Model", bound=BaseModel)


class _Provider(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GraphError(_Provider):
    """Meta's documented error object."""

    message: str | None = None
    type: str | None = None
    code: int | None = None
    error_subcode: int | None = None
    fbtrace_id: str | None = None
    is_transient: bool | None = None


class _ErrorEnvelope(_Provider):
    error: GraphError


def api_base(channel: ChannelConnection) -> str:
    return (channel.config.api_base_url or GRAPH_BASE_URL).rstrip("/")


def access_token(channel: ChannelConnection) -> str:
    token = channel.secrets.access_token
    if not token:
        raise ProviderRejectedError("channel has no access token configured")
    return token


def _retry_after_ms(response: httpx.Response) -> int | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None  # an HTTP-date: rare enough that the default delay will do
    return max(0, int(seconds * 1000))


def _usage_delay_ms(response: httpx.Response) -> int | None:
    """Meta's X-Business-Use-Case-Usage names the minutes until a throttled app may call again."""
    raw = response.headers.get("x-business-use-case-usage")
    if raw is None:
        return None
    try:
        usage = orjson.loads(raw)
        minutes = [
            int(item.get("estimated_time_to_regain_access") or 0)
            for items in usage.values()
            for item in items
        ]
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None
    longest = max(minutes, default=0)
    return longest * 60_000 if longest > 0 else None


def _throttle_delay_ms(response: httpx.Response, code: int | None) -> int:
    delay_ms = _retry_after_ms(response)
    if delay_ms is None:
        delay_ms = _usage_delay_ms(response)
    if delay_ms is None:
        delay_ms = THROTTLE_DELAY_MS.get(code, DEFAULT_RETRY_AFTER_MS) if code else None
    return DEFAULT_RETRY_AFTER_MS if delay_ms is None else delay_ms


def _describe(error: GraphError, status: int) -> str:
    parts = [f"graph api {status}"]
    if error.code is not None:
        code = f"code {error.code}"
        parts.append(f"{code}/{error.error_subcode}" if error.error_subcode else code)
    if error.type:
        parts.append(error.type)
    text = ", ".join(parts)
    if error.message:
        text += f": {error.message}"
    if error.fbtrace_id:
        text += f" (fbtrace_id {error.fbtrace_id})"
    return text[:_TEXT_MAX_CHARS]


def _graph_error(response: httpx.Response) -> GraphError:
    try:
        return _ErrorEnvelope.model_validate_json(response.content).error
    except ValidationError:
        return GraphError()  # a proxy's HTML page, say: only the HTTP status is left to judge


def error_for(response: httpx.Response) -> EngineError:
    """The engine error for a failed Graph API response (the caller raises it)."""
    status = response.status_code
    error = _graph_error(response)
    code = error.code
    text = _describe(error, status)
    if status == 429 or code in THROTTLING_CODES:
        return RateLimitedError(text, delay_ms=_throttle_delay_ms(response, code))
    if code in TRANSIENT_CODES or (code in TRANSIENT_WHEN_5XX and status >= 500):
        return ProviderUnavailableError(text)
    if code in PERMANENT_CODES:
        return ProviderRejectedError(text, code=str(code))
    # Codes we have no row for: Meta's own is_transient hint, then the HTTP status.
    if error.is_transient or status >= 500:
        return ProviderUnavailableError(text)
    return ProviderRejectedError(text, code=None if code is None else str(code))


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _transport_error(exc: Exception) -> EngineError:
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        # A bad api_base_url is a configuration fault no retry will cure.
        return ProviderRejectedError(f"invalid Graph API URL ({type(exc).__name__})")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnavailableError(f"graph api timed out ({type(exc).__name__})")
    return ProviderUnavailableError(f"graph api unreachable ({type(exc).__name__})")


def _request(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    token: str,
    json: Mapping[str, object] | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    try:
        response = http.request(
            method, url, json=json, params=params, headers=_headers(token), timeout=GRAPH_TIMEOUT
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _transport_error(exc) from exc
    if not response.is_success:
        error = error_for(response)
        log.debug("graph api call failed", extra={"status": response.status_code})
        raise error
    return response


def _read(response: httpx.Response, model: type[_Model]) -> _Model:
    try:
        return model.model_validate_json(response.content)
    except ValidationError:
        # The call succeeded but its answer is not the documented one; a retry could repeat a
        # send that went out, so this dead-letters for an operator instead.
        raise InvalidPayloadError(f"unexpected Graph API answer for {model.__name__}") from None


def post_json(
    http: httpx.Client,
    url: str,
    *,
    token: str,
    body: Mapping[str, object],
    response_model: type[_Model],
) -> _Model:
    """POST `body` as JSON with a Bearer token; the documented answer, or an engine error."""
    return _read(_request(http, "POST", url, token=token, json=body), response_model)


def get_json(
    http: httpx.Client,
    url: str,
    *,
    token: str,
    response_model: type[_Model],
    params: Mapping[str, str] | None = None,
) -> _Model:
    """GET with a Bearer token; the documented answer, or an engine error."""
    return _read(_request(http, "GET", url, token=token, params=params), response_model)


def download(http: httpx.Client, url: str, *, token: str | None) -> tuple[bytes, str | None]:
    """(bytes, content type) of a media URL, capped at MAX_MEDIA_BYTES; engine errors only."""
    try:
        with http.stream("GET", url, headers=_headers(token), timeout=MEDIA_TIMEOUT) as response:
            if not response.is_success:
                response.read()
                raise error_for(response)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_MEDIA_BYTES:
                    raise ProviderRejectedError(f"media larger than {MAX_MEDIA_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks), response.headers.get("content-type")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _transport_error(exc) from exc
