"""enrich ▸ route ▸ deliver ▸ ack for one pending outbound message (runs in a worker)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy import Engine

from adapters.base import OutboundAdapter
from engine.db import system_tx
from engine.errors import (
    PermanentError,
    ProviderRejectedError,
    RateLimitedError,
    RecipientMovedError,
    RetryableError,
)
from engine.events import ChannelConnection, ChannelType, MessageType, OutboundMessage, SendResult
from engine.store.channels import get_channel
from engine.store.outbound import (
    SendJob,
    claim_for_send,
    mark_send_failed,
    mark_sent,
    move_recipient,
    release_claim,
)
from engine.store.outbox import insert_outbox

log = logging.getLogger(__name__)

# Meta only lets a business start a conversation with a template; free-form replies are
# allowed for 24 hours after the customer's last message.
SESSION_WINDOW = timedelta(hours=24)
_WINDOWED = {ChannelType.WHATSAPP, ChannelType.MESSENGER, ChannelType.INSTAGRAM}


class Bucket(Protocol):
    def take(self, key: str, *, rate_per_s: float, burst: int) -> int: ...

    def penalize(self, key: str, *, pause_ms: int) -> object: ...


Limits = Callable[[ChannelConnection], tuple[float, int]]
Publish = Callable[[list[int]], object]


@dataclass
class SendOutcome:
    status: str
    message_id: int
    provider_message_id: str | None = None
    outbox_ids: list[int] = field(default_factory=list)


def enrich(job: SendJob, *, recipient: str) -> OutboundMessage:
    """The adapter's view of the message. Variables and media rendering hook in here."""
    subject = job.subject
    if subject is not None and not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return OutboundMessage(
        message_id=job.message_id,
        tenant_id=job.tenant_id,
        channel_id=job.channel_id,
        recipient=recipient,
        type=job.type,
        body=job.body,
        media_url=job.media_url,
        filename=job.filename,
        quoted_provider_message_id=job.quoted_provider_message_id,
        template=job.template,
        subject=subject,
        thread_ids=job.thread_ids,
    )


def route(job: SendJob, *, now: datetime) -> str:
    """Decide whether this message may go out now; return the recipient's address.

    Raises ProviderRejectedError for sends that must not happen (opted out, blocked, no
    address, outside the 24-hour window without a template): the message fails at once.
    """
    if job.opted_out:
        raise ProviderRejectedError("the contact opted out of messages", code="opted_out")
    if job.unreachable:
        raise ProviderRejectedError("the contact blocked this channel", code="unreachable")
    if not job.recipient:
        raise ProviderRejectedError("the contact has no address on this channel", code="no_address")
    if _outside_window(job, now):
        raise ProviderRejectedError(
            "outside the 24-hour window: only a template may start the conversation",
            code="outside_window",
        )
    return job.recipient


def _outside_window(job: SendJob, now: datetime) -> bool:
    if job.channel_type not in _WINDOWED or job.type is MessageType.TEMPLATE:
        return False
    return job.last_inbound_at is None or now - job.last_inbound_at > SESSION_WINDOW


def run_send(
    message_id: int,
    *,
    db: Engine,
    adapters: Mapping[ChannelType, OutboundAdapter],
    http: httpx.Client,
    bucket: Bucket,
    limits: Limits,
    last_attempt: bool,
    publish: Publish,
) -> SendOutcome:
    """Send one message. Idempotent: a message already sent or failed is left alone.

    Raises RateLimitedError (wait for tokens; the middleware does not count it as a retry),
    RetryableError (provider down: retry with backoff; the message stays pending until the last
    attempt, which marks it failed) and PermanentError (the message is marked failed first).
    """
    with system_tx(db) as conn:
        job = claim_for_send(conn, message_id)
        channel = get_channel(conn, job.channel_id) if job is not None else None
    if job is None or channel is None:
        return SendOutcome(status="skipped", message_id=message_id)
    connection = channel.connection()
    adapter = adapters.get(connection.type)
    try:
        if adapter is None:
            raise PermanentError(f"no adapter can send on {connection.type} channels")
        recipient = route(job, now=datetime.now(UTC))
        _wait_for_token(bucket, connection, limits)
        result = _deliver(adapter, job, connection, recipient, db=db, http=http)
    except ThrottledError:
        _release(db, job, uncount=True)
        raise
    except RateLimitedError as exc:
        if exc.delay_ms:
            bucket.penalize(_bucket_key(connection), pause_ms=exc.delay_ms)
        _release(db, job, uncount=False)
        raise
    except PermanentError as exc:
        publish(_fail(db, job, exc))
        raise
    except RetryableError as exc:
        if last_attempt:
            publish(_fail(db, job, exc))
        else:
            _release(db, job, uncount=False)
        raise
    return _ack(db, job, result)


class ThrottledError(RateLimitedError):
    """Our own token bucket said wait: the provider was never called."""


def _release(db: Engine, job: SendJob, *, uncount: bool) -> None:
    with system_tx(db) as conn:
        release_claim(conn, message_id=job.message_id, uncount=uncount)


def _bucket_key(channel: ChannelConnection) -> str:
    return f"channel:{channel.id}"


def _wait_for_token(bucket: Bucket, channel: ChannelConnection, limits: Limits) -> None:
    rate, burst = limits(channel)
    wait_ms = bucket.take(_bucket_key(channel), rate_per_s=rate, burst=burst)
    if wait_ms > 0:
        raise ThrottledError(f"channel {channel.id} is at its send rate", delay_ms=wait_ms)


def _deliver(
    adapter: OutboundAdapter,
    job: SendJob,
    channel: ChannelConnection,
    recipient: str,
    *,
    db: Engine,
    http: httpx.Client,
) -> SendResult:
    """Call the provider; follow a moved recipient (Telegram migrate_to_chat_id) once."""
    try:
        return adapter.send(enrich(job, recipient=recipient), channel=channel, http=http)
    except RecipientMovedError as moved:
        with system_tx(db) as conn:
            move_recipient(
                conn,
                contact_id=job.contact_id,
                channel_type=channel.type,
                old=recipient,
                new=moved.new_recipient,
            )
        log.info("recipient moved; resending once", extra={"message_id": job.message_id})
        return adapter.send(enrich(job, recipient=moved.new_recipient), channel=channel, http=http)


def _ack(db: Engine, job: SendJob, result: SendResult) -> SendOutcome:
    with system_tx(db) as conn:
        status = mark_sent(
            conn, message_id=job.message_id, provider_message_id=result.provider_message_id
        )
        outbox_id = insert_outbox(
            conn,
            tenant_id=job.tenant_id,
            topic="message.status",
            payload={"message_id": job.message_id, "ticket_id": job.ticket_id, "status": status},
        )
    return SendOutcome(
        status=status,
        message_id=job.message_id,
        provider_message_id=result.provider_message_id,
        outbox_ids=[outbox_id],
    )


def _fail(db: Engine, job: SendJob, exc: Exception) -> list[int]:
    code = getattr(exc, "code", None)
    with system_tx(db) as conn:
        mark_send_failed(conn, message_id=job.message_id, code=code, reason=str(exc))
        outbox_id = insert_outbox(
            conn,
            tenant_id=job.tenant_id,
            topic="message.status",
            payload={"message_id": job.message_id, "ticket_id": job.ticket_id, "status": "failed"},
        )
    log.info(
        "send failed",
        extra={"message_id": job.message_id, "code": code, "error": type(exc).__name__},
    )
    return [outbox_id]
