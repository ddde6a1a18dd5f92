"""Delivery-status webhooks the sandbox sends after a send, signed like the real provider."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from adapters.sandbox.state import (
    CallbackDelivery,
    CallbackTarget,
    SandboxState,
    SentMessage,
    utc_now,
)

log = logging.getLogger(__name__)

_CALLBACK_ATTEMPTS = 3
_CALLBACK_RETRY_S = 0.1
_CALLBACK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_WHATSAPP_ERRORS = {
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131049: "Meta chose not to deliver",
    131050: "User has stopped marketing messages",
}
_TWILIO_FAILED = frozenset({"failed", "undelivered"})


def sign_meta(app_secret: str, body: bytes) -> str:
    """X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def sign_twilio(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the sorted names+values."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _whatsapp_status(target: CallbackTarget, sent: SentMessage, status: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": sent.message_id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": sent.recipient,
    }
    if status == "failed":
        code = target.error_code or 131026
        title = _WHATSAPP_ERRORS.get(code, "Message failed to send")
        entry["errors"] = [
            {
                "code": code,
                "title": title,
                "message": title,
                "error_data": {"details": f"{title} (sandbox)."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
        return entry
    conversation_id = hashlib.md5(sent.recipient.encode(), usedforsecurity=False).hexdigest()
    entry["conversation"] = {"id": conversation_id, "origin": {"type": "service"}}
    entry["pricing"] = {
        "billable": False,
        "pricing_model": "PMP",
        "category": "service",
        "type": "free_customer_service",
    }
    return entry


def whatsapp_payload(target: CallbackTarget, sent: SentMessage, status: str) -> bytes:
    """A `messages` change of a whatsapp_business_account webhook carrying one status."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": target.display_phone_number,
            "phone_number_id": target.account,
        },
        "statuses": [_whatsapp_status(target, sent, status)],
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": target.waba_id, "changes": [{"value": value, "field": "messages"}]}],
    }
    return orjson.dumps(envelope)


def messenger_payload(target: CallbackTarget, sent: SentMessage, status: str) -> bytes:
    """A Messenger `message_deliveries` / `message_reads` (Instagram: `messaging_seen`) event."""
    now_ms = int(time.time() * 1000)
    event: dict[str, Any] = {
        "sender": {"id": sent.recipient},
        "recipient": {"id": target.account},
        "timestamp": now_ms,
    }
    if status == "delivered":
        event["delivery"] = {"mids": [sent.message_id], "watermark": now_ms}
    elif target.provider == "instagram":
        event["read"] = {"mid": sent.message_id}
    else:
        event["read"] = {"watermark": now_ms}
    obj = "instagram" if target.provider == "instagram" else "page"
    envelope = {
        "object": obj,
        "entry": [{"id": target.account, "time": now_ms, "messaging": [event]}],
    }
    return orjson.dumps(envelope)


def twilio_params(target: CallbackTarget, sent: SentMessage, status: str) -> list[tuple[str, str]]:
    """The form fields of Twilio's documented outbound-message status callback."""
    params = [
        ("MessageSid", sent.message_id),
        ("SmsSid", sent.message_id),
        ("AccountSid", sent.account_sid or ""),
        ("From", target.account),
        ("To", sent.recipient),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("ApiVersion", "2010-04-01"),
    ]
    if status in _TWILIO_FAILED:
        params.append(("ErrorCode", str(target.error_code or 30003)))
    return params


def build_request(
    target: CallbackTarget, sent: SentMessage, status: str
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one signed status webhook."""
    if target.provider == "twilio":
        params = twilio_params(target, sent, status)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign_twilio(target.secret, target.url, params),
            "I-Twilio-Idempotency-Token": f"{sent.message_id}-{status}",
            "User-Agent": "TwilioProxy/1.1",
        }
        return urlencode(params).encode(), headers
    if target.provider == "whatsapp":
        body = whatsapp_payload(target, sent, status)
    else:
        body = messenger_payload(target, sent, status)
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign_meta(target.secret, body),
        "User-Agent": "facebookexternalua",
    }
    return body, headers


class CallbackDispatcher:
    """Schedules status webhooks on the server's event loop; a failing receiver only logs."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, sent: SentMessage) -> None:
        """Start the status sequence for `sent` if its account has a registered receiver."""
        target = self._state.callback_for(sent.provider, sent.account)
        if target is None:
            return
        task = asyncio.get_running_loop().create_task(self._run(target, sent))
        # The loop keeps only weak references to tasks; this set keeps them alive.
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sandbox callback task failed", exc_info=task.exception())

    async def _run(self, target: CallbackTarget, sent: SentMessage) -> None:
        for status in target.statuses:
            await asyncio.sleep(target.delay_ms / 1000)
            await self._post(target, sent, status)

    async def _post(self, target: CallbackTarget, sent: SentMessage, status: str) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=_CALLBACK_TIMEOUT)
        body, headers = build_request(target, sent, status)
        http_status: int | None = None
        error: str | None = None
        # Like the real providers, a failed status webhook is tried again (a few times, soon).
        for attempt in range(_CALLBACK_ATTEMPTS):
            try:
                response = await self._client.post(target.url, content=body, headers=headers)
                http_status, error = response.status_code, None
            except httpx.HTTPError as exc:
                http_status, error = None, type(exc).__name__
            if error is None and http_status is not None and http_status < 500:
                break
            log.warning(
                "sandbox callback failed",
                extra={
                    "provider": target.provider,
                    "status": status,
                    "error": error,
                    "http_status": http_status,
                    "attempt": attempt + 1,
                },
            )
            if attempt + 1 < _CALLBACK_ATTEMPTS:
                await asyncio.sleep(_CALLBACK_RETRY_S * (attempt + 1))
        self._state.record_delivery(
            CallbackDelivery(
                provider=target.provider,
                account=target.account,
                url=target.url,
                message_id=sent.message_id,
                status=status,
                http_status=http_status,
                error=error,
                time=utc_now(),
            )
        )

    async def aclose(self) -> None:
        """Cancel pending sequences and close the HTTP client (server shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
