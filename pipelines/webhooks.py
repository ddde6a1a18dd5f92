"""Outbound webhooks: plan deliveries for committed events, then POST each one signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx
from sqlalchemy import Connection, Engine

from engine.db import system_tx
from engine.errors import PermanentError, RetryableError
from engine.store.webhooks import (
    DeliveryJob,
    PlannedDelivery,
    insert_deliveries,
    record_attempt,
    start_attempt,
)

log = logging.getLogger(__name__)

WEBHOOKS_QUEUE = "webhooks"
WEBHOOK_EVENTS = (
    "message.created",
    "message.status",
    "ticket.created",
    "ticket.updated",
    "campaign.progress",
    "contact.updated",
    "sla.breached",
)
# A tenant's slow endpoint must become a retry, never a stuck worker thread.
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_RETRY_AFTER_MS = 3_600_000
USER_AGENT = "FlowDesk-Webhooks/1"

Outcome = Literal["delivered", "skipped"]


class WebhookFailedError(RetryableError):
    """The receiver timed out, was unreachable, or answered 408, 429 or 5xx."""


class WebhookRejectedError(PermanentError):
    """The receiver answered a 3xx or a 4xx other than 408/429: retrying will not help."""


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: dict[str, str]


def plan_webhooks(conn: Connection, outbox_ids: Sequence[int]) -> list[PlannedDelivery]:
    """Record a delivery for each enabled subscription matching each event (system scope).

    Runs in the transaction that marks the events published, so a crash plans nothing twice
    and loses nothing. Idempotent per (subscription, event).
    """
    return insert_deliveries(conn, outbox_ids)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"` under the subscription's secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def sign(job: DeliveryJob, *, timestamp: int) -> SignedRequest:
    """The request of one attempt. The body is the same on every attempt; the timestamp is not."""
    body = json.dumps(
        {
            "id": job.outbox_id if job.outbox_id is not None else job.id,
            "event": job.event,
            "created_at": job.created_at.isoformat(),
            "tenant_id": job.tenant_id,
            "data": json.loads(job.payload_json),
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-FlowDesk-Event": job.event,
        "X-FlowDesk-Delivery": str(job.id),
        "X-FlowDesk-Timestamp": str(timestamp),
        "X-FlowDesk-Signature": signature(job.secret, timestamp, body),
    }
    return SignedRequest(body=body, headers=headers)


def send_webhook(
    delivery_id: int,
    *,
    db: Engine,
    http: httpx.Client,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """POST one delivery and record the attempt (status code, latency, error).

    Raises WebhookFailedError (retry with backoff) or WebhookRejectedError (dead letter).
    "skipped" when delivered already or its subscription was deleted or disabled.
    At-least-once: receivers dedupe on X-FlowDesk-Delivery.
    """
    with system_tx(db) as conn:
        job = start_attempt(conn, delivery_id)
    if job is None:
        return "skipped"
    request = sign(job, timestamp=int(clock()))
    started = time.monotonic()
    status_code: int | None = None
    try:
        response = http.post(
            job.url,
            content=request.body,
            headers=request.headers,
            timeout=WEBHOOK_TIMEOUT,
            follow_redirects=False,
        )
        status_code = response.status_code
        error = _classify(response)
    except httpx.TimeoutException:
        error = WebhookFailedError("timed out")
    except httpx.HTTPError as exc:  # refused, DNS, TLS, protocol: the receiver may come back
        error = WebhookFailedError(f"unreachable: {type(exc).__name__}")
    latency_ms = int((time.monotonic() - started) * 1000)
    with system_tx(db) as conn:
        record_attempt(
            conn,
            delivery_id=job.id,
            status_code=status_code,
            latency_ms=latency_ms,
            error=None if error is None else str(error),
            delivered=error is None,
        )
    log.info(
        "webhook attempt",
        extra={
            "stage": "deliver",
            "tenant_id": job.tenant_id,
            "delivery_id": job.id,
            "subscription_id": job.subscription_id,
            "attempt": job.attempts,
            "status_code": status_code,
            "latency_ms": latency_ms,
        },
    )
    if error is not None:
        raise error
    return "delivered"


def _classify(response: httpx.Response) -> Exception | None:
    code = response.status_code
    if 200 <= code < 300:
        return None
    if code in (408, 429) or code >= 500:
        return WebhookFailedError(f"HTTP {code}", delay_ms=_retry_after_ms(response))
    return WebhookRejectedError(f"HTTP {code}")


def _retry_after_ms(response: httpx.Response) -> int | None:
    """A 429/503's Retry-After in seconds, capped; the HTTP-date form falls back to backoff."""
    value = response.headers.get("retry-after", "").strip()
    if not value.isdigit():
        return None
    return min(int(value) * 1000, MAX_RETRY_AFTER_MS)
