"""enrich ▸ route ▸ deliver for one claimed outbound message; the verdict its batch settles."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

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
from engine.store.outbound import move_recipient
from engine.store.send_batch import SendJob

log = logging.getLogger(__name__)

# Meta only lets a business start a conversation with a template; free-form replies are
# allowed for 24 hours after the customer's last message.
SESSION_WINDOW = timedelta(hours=24)
_WINDOWED = {ChannelType.WHATSAPP, ChannelType.MESSENGER, ChannelType.INSTAGRAM}


class ThrottledError(RateLimitedError):
    """Our own token bucket said wait: the provider was never called."""


@dataclass(frozen=True)
class Sent:
    result: SendResult


@dataclass(frozen=True)
class Refused:
    """Will never go out (route said no, the provider rejected it): failed at once."""

    error: PermanentError


@dataclass(frozen=True)
class Failing:
    """A retryable failure (or an unexpected one): retried, failed on the last attempt."""

    error: Exception


@dataclass(frozen=True)
class Throttled:
    """The channel's bucket had no token: sent again in `delay_ms`, not counted as an attempt.
    `reserved`: a slot was set aside for it then, so it will not take a token again."""

    delay_ms: int
    reserved: bool


@dataclass(frozen=True)
class Deferred:
    """The batch ran out of time before this one reached the provider: sent again at once."""


Verdict = Sent | Refused | Failing | Throttled | Deferred


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


def deliver(
    adapter: OutboundAdapter,
    job: SendJob,
    channel: ChannelConnection,
    recipient: str,
    *,
    db: Engine,
    http: httpx.Client,
) -> SendResult:
    """Call the provider; follow a moved recipient (Telegram migrate_to_chat_id) once.

    Raises what the adapter raises (its errors are classified at its edge).
    """
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


def attempt(
    adapter: OutboundAdapter,
    job: SendJob,
    channel: ChannelConnection,
    recipient: str,
    *,
    db: Engine,
    http: httpx.Client,
    deadline: float,
) -> Verdict:
    """deliver() as a verdict. Never raises: it runs on a shared thread pool, one of many
    sends of a batch whose successes must be acknowledged whatever happens to the others.
    Past `deadline` (time.monotonic()) the provider is not called at all."""
    if time.monotonic() > deadline:
        return Deferred()
    try:
        return Sent(deliver(adapter, job, channel, recipient, db=db, http=http))
    except PermanentError as exc:
        return Refused(exc)
    except RetryableError as exc:
        return Failing(exc)
    except Exception as exc:  # a bug in one send is that send's failure, not the batch's
        log.exception("unexpected send error", extra={"message_id": job.message_id})
        return Failing(exc)
