"""Sends through Twilio's Messages API and downloads MMS media, translating its errors."""

from __future__ import annotations

import math
import re
from typing import Any

import httpx
import orjson

from engine.errors import (
    EngineError,
    InvalidPayloadError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
)
from engine.events import ChannelConnection, Media, MediaContent, OutboundMessage, SendResult

DEFAULT_API_BASE_URL = "https://api.twilio.com"
_DEFAULT_RETRY_AFTER_MS = 1000
_RATE_LIMIT_CODES = frozenset({20429})  # Too Many Requests
_UNAVAILABLE_CODES = frozenset({20500, 20503})  # Internal Server Error, Service Unavailable
# Codes no retry can fix: bad or unreachable recipient, opted out (STOP), landline,
# carrier-filtered, region not enabled, bad credentials.
_PERMANENT_CODES = frozenset({20003, 21211, 21408, 21610, 21612, 21614, 30003, 30005, 30006, 30007})
# Twilio's error texts quote the recipient's number; exceptions end up in logs and dead letters.
_PHONE_LIKE = re.compile(r"\+?\d[\d ().-]{5,}\d")


def _credentials(channel: ChannelConnection) -> tuple[str, str]:
    account_sid = channel.config.account_sid
    auth_token = channel.secrets.auth_token
    if not account_sid or not auth_token:
        raise ProviderRejectedError("channel has no Twilio account_sid or auth_token")
    return account_sid, auth_token


def _base_url(channel: ChannelConnection) -> str:
    return (channel.config.api_base_url or DEFAULT_API_BASE_URL).rstrip("/")


def _request(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return http.request(method, url, **kwargs)
    except httpx.InvalidURL:
        raise ProviderRejectedError("Twilio URL is not valid") from None
    except httpx.HTTPError as exc:
        raise ProviderUnavailableError(f"Twilio unreachable: {type(exc).__name__}") from None


def _error_body(response: httpx.Response) -> tuple[int | None, str]:
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, f"HTTP {response.status_code}"
    if not isinstance(payload, dict):
        return None, f"HTTP {response.status_code}"
    code = payload.get("code")
    message = payload.get("message")
    text = message if isinstance(message, str) else f"HTTP {response.status_code}"
    return (code if type(code) is int else None), _PHONE_LIKE.sub("<number>", text)


def _retry_after_ms(response: httpx.Response) -> int:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return _DEFAULT_RETRY_AFTER_MS
    if not math.isfinite(seconds) or seconds < 0:
        return _DEFAULT_RETRY_AFTER_MS
    return math.ceil(seconds * 1000)


def classify(response: httpx.Response) -> EngineError:
    """The engine error for a non-2xx Twilio answer, by Twilio's error code first."""
    code, text = _error_body(response)
    status = response.status_code
    described = f"Twilio {code or status}: {text}"
    if status == 429 or code in _RATE_LIMIT_CODES:
        return RateLimitedError(described, delay_ms=_retry_after_ms(response))
    if code in _PERMANENT_CODES:
        return ProviderRejectedError(described, code=str(code))
    if code in _UNAVAILABLE_CODES or status >= 500:
        return ProviderUnavailableError(described)
    if 400 <= status < 500:
        return ProviderRejectedError(described, code=str(code) if code is not None else None)
    return ProviderUnavailableError(f"Twilio answered unexpected HTTP {status}")


def _form(message: OutboundMessage, *, sender: str) -> dict[str, str]:
    if not message.body and not message.media_url:
        # SMS has no templates or other structured types: only text and media by URL.
        raise InvalidPayloadError(f"an SMS needs a body or a media URL ({message.type} given)")
    form = {"To": message.recipient, "From": sender}
    if message.body:
        form["Body"] = message.body
    if message.media_url:
        form["MediaUrl"] = message.media_url
    return form


def send(message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client) -> SendResult:
    """POST one message to the Messages resource; Twilio's status callbacks report the rest.

    Raises RateLimitedError, ProviderUnavailableError, ProviderRejectedError, or
    InvalidPayloadError for a message SMS cannot carry (no body and no media URL).
    """
    account_sid, auth_token = _credentials(channel)
    url = f"{_base_url(channel)}/2010-04-01/Accounts/{account_sid}/Messages.json"
    form = _form(message, sender=channel.external_id)
    response = _request(http, "POST", url, data=form, auth=(account_sid, auth_token))
    if not response.is_success:
        raise classify(response)
    try:
        sid = orjson.loads(response.content)["sid"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        sid = None
    if not isinstance(sid, str) or not sid:
        # Twilio took the message but we cannot track it; a retry would send it twice.
        raise ProviderRejectedError("Twilio accepted the message but returned no sid")
    return SendResult(provider_message_id=sid)


def fetch_media(media: Media, *, channel: ChannelConnection, http: httpx.Client) -> MediaContent:
    """GET an MMS media URL with the account's credentials.

    Twilio answers with a redirect to short-lived storage; httpx drops the credentials
    when a redirect leaves the origin. Same errors as `send`.
    """
    if not media.url:
        raise InvalidPayloadError("media has no URL to fetch")
    account_sid, auth_token = _credentials(channel)
    response = _request(
        http, "GET", media.url, auth=(account_sid, auth_token), follow_redirects=True
    )
    if not response.is_success:
        raise classify(response)
    return MediaContent(
        data=response.content, mime_type=response.headers.get("content-type") or media.mime_type
    )
