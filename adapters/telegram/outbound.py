"""Telegram Bot API sends and file downloads, its error answers translated at the edge."""

from __future__ import annotations

import mimetypes
import re
from typing import Any, NoReturn

import httpx
from pydantic import ValidationError

from adapters.telegram.inbound import chat_and_message_of, message_id_of, message_key
from adapters.telegram.payloads import ApiResponse, File, ResponseParameters, SentMessage
from engine.errors import (
    InvalidPayloadError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
    RecipientMovedError,
)
from engine.events import (
    ChannelConnection,
    Media,
    MediaContent,
    MessageType,
    OutboundMessage,
    SendResult,
)

DEFAULT_API_BASE_URL = "https://api.telegram.org"
_DESCRIPTION_MAX_CHARS = 300
_CHAT_ID = re.compile(r"-?[0-9]{1,20}")
# Media goes by URL: Telegram fetches it itself, so no bytes pass through the worker.
_MEDIA_METHODS: dict[MessageType, tuple[str, str]] = {
    MessageType.IMAGE: ("sendPhoto", "photo"),
    MessageType.VIDEO: ("sendVideo", "video"),
    MessageType.AUDIO: ("sendAudio", "audio"),
    MessageType.VOICE: ("sendVoice", "voice"),
    MessageType.DOCUMENT: ("sendDocument", "document"),
    MessageType.STICKER: ("sendSticker", "sticker"),
}


def _bot_url(channel: ChannelConnection, method: str, *, files: bool = False) -> str:
    token = channel.secrets.bot_token
    if not token:
        raise ProviderRejectedError("no bot token configured for this channel", code="no_bot_token")
    base = (channel.config.api_base_url or DEFAULT_API_BASE_URL).rstrip("/")
    return f"{base}/file/bot{token}/{method}" if files else f"{base}/bot{token}/{method}"


def _chat_id(recipient: str) -> int | str:
    # Numeric chat ids go as JSON integers; anything else is an @username Telegram resolves.
    return int(recipient) if _CHAT_ID.fullmatch(recipient) else recipient


def _request(message: OutboundMessage) -> tuple[str, dict[str, Any]]:
    """(Bot API method, JSON body) for one outbound message."""
    payload: dict[str, Any] = {"chat_id": _chat_id(message.recipient)}
    if message.type is MessageType.TEXT:
        method = "sendMessage"
        # No parse_mode: agents type plain text, and Markdown would reject a stray "_".
        payload["text"] = message.body or ""
    elif message.type in _MEDIA_METHODS:
        method, field = _MEDIA_METHODS[message.type]
        if not message.media_url:
            raise ProviderRejectedError(f"{method} needs a media_url", code="no_media_url")
        payload[field] = message.media_url
        if message.body and message.type is not MessageType.STICKER:
            payload["caption"] = message.body
    else:
        raise ProviderRejectedError(
            f"telegram cannot send a {message.type} message", code="unsupported_type"
        )
    quoted = message_id_of(message.quoted_provider_message_id or "")
    if quoted is not None:
        # A quoted message the customer deleted must not cost the reply itself.
        payload["reply_parameters"] = {"message_id": quoted, "allow_sending_without_reply": True}
    return method, payload


def _delay_ms(retry_after_s: int | None, response: httpx.Response) -> int | None:
    if retry_after_s is None:
        header = response.headers.get("retry-after", "")
        retry_after_s = int(header) if header.isascii() and header.isdigit() else None
    return retry_after_s * 1000 if retry_after_s is not None else None


def _fail(method: str, response: httpx.Response, answer: ApiResponse | None) -> NoReturn:
    """Raise the engine error for a failed Bot API call, by Telegram's error_code."""
    code = (answer.error_code if answer else None) or response.status_code
    params = (answer.parameters if answer else None) or ResponseParameters()
    description = (answer.description if answer else None) or response.reason_phrase
    text = f"telegram {method} {code}: {description[:_DESCRIPTION_MAX_CHARS]}"
    if params.migrate_to_chat_id is not None:
        raise RecipientMovedError(text, new_recipient=str(params.migrate_to_chat_id))
    if code == 429:
        raise RateLimitedError(text, delay_ms=_delay_ms(params.retry_after, response))
    if code >= 500:
        raise ProviderUnavailableError(text)
    if code >= 400:
        raise ProviderRejectedError(text, code=str(code))
    raise InvalidPayloadError(f"telegram {method} answered {code} without a Bot API body")


def _answer(response: httpx.Response) -> ApiResponse | None:
    try:
        return ApiResponse.model_validate_json(response.content)
    except ValidationError:
        return None


def _exchange(
    http: httpx.Client, method: str, url: str, payload: dict[str, Any] | None
) -> httpx.Response:
    """POST `payload` as JSON (GET when None) with every httpx failure translated."""
    # `from None` everywhere: the URL carries the bot token, and tracebacks reach dead letters.
    try:
        if payload is None:
            return http.get(url)
        return http.post(url, json=payload)
    except httpx.TimeoutException:
        raise ProviderUnavailableError(f"telegram {method} timed out") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        # A misconfigured base URL: no retry will fix it.
        raise ProviderRejectedError("invalid Telegram api_base_url", code="bad_base_url") from None
    except httpx.HTTPError as exc:
        raise ProviderUnavailableError(f"telegram {method} failed: {type(exc).__name__}") from None


def _call(
    http: httpx.Client, channel: ChannelConnection, method: str, payload: dict[str, Any]
) -> Any:
    """The `result` of a successful Bot API call."""
    response = _exchange(http, method, _bot_url(channel, method), payload)
    answer = _answer(response)
    if answer is None or not answer.ok:
        _fail(method, response, answer)
    return answer.result


def send(message: OutboundMessage, *, channel: ChannelConnection, http: httpx.Client) -> SendResult:
    """Send one message; its id is `chat:message` like every Telegram id we store."""
    method, payload = _request(message)
    result = _call(http, channel, method, payload)
    try:
        sent = SentMessage.model_validate(result)
    except ValidationError:
        raise InvalidPayloadError(f"telegram {method} answered ok without a message") from None
    return SendResult(provider_message_id=message_key(sent.chat.id, sent.message_id))


def fetch_media(media: Media, *, channel: ChannelConnection, http: httpx.Client) -> MediaContent:
    """getFile for the file's path, then the bytes from the file endpoint (≤ 20 MB)."""
    if not media.provider_media_id:
        raise ProviderRejectedError("media has no Telegram file_id", code="no_file_id")
    result = _call(http, channel, "getFile", {"file_id": media.provider_media_id})
    try:
        path = File.model_validate(result).file_path
    except ValidationError:
        raise InvalidPayloadError("telegram getFile answered ok without a file") from None
    if not path:
        raise ProviderRejectedError("telegram getFile gave no file_path", code="no_file_path")
    response = _exchange(http, "file", _bot_url(channel, path, files=True), None)
    if not response.is_success:
        _fail("file", response, _answer(response))
    return MediaContent(
        data=response.content,
        mime_type=media.mime_type or mimetypes.guess_type(path)[0],
        filename=media.filename or path.rpartition("/")[2],
    )


def _target(provider_message_id: str) -> dict[str, int]:
    ids = chat_and_message_of(provider_message_id)
    if ids is None:
        raise ProviderRejectedError(
            "not a Telegram chat message id; nothing to change", code="not_a_message"
        )
    return {"chat_id": ids[0], "message_id": ids[1]}


def edit_message(
    provider_message_id: str,
    *,
    body: str,
    message_type: str,
    channel: ChannelConnection,
    http: httpx.Client,
) -> None:
    """editMessageText for a text message, editMessageCaption for media."""
    if message_type == MessageType.TEXT:
        method, field = "editMessageText", "text"
    elif message_type in _MEDIA_METHODS and message_type != MessageType.STICKER:
        method, field = "editMessageCaption", "caption"
    else:
        raise ProviderRejectedError(
            f"telegram cannot edit a {message_type} message", code="unsupported_type"
        )
    try:
        _call(http, channel, method, {**_target(provider_message_id), field: body})
    except ProviderRejectedError as exc:
        # Telegram refuses an edit to the text the message already has; for us that edit is
        # done (typically our own earlier attempt succeeded and its answer was lost).
        if "message is not modified" not in str(exc):
            raise


def delete_message(
    provider_message_id: str, *, channel: ChannelConnection, http: httpx.Client
) -> None:
    """deleteMessage; Telegram refuses it for messages older than 48 hours (400)."""
    _call(http, channel, "deleteMessage", _target(provider_message_id))
