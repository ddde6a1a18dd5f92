"""Send actors: batches of outbound messages through their channels' providers, then their
realtime events, published in-line; `send_message` is the one-message form."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import dramatiq

from actors import deps
from actors.broker import actor
from actors.deliver import publish_in_line
from actors.middleware import RetryPolicy, is_last_attempt
from config import Settings
from engine.ratelimit import limits_for
from pipelines.outbound import OUTBOUND_QUEUE, SEND_BATCH, BatchOutcome, SendPolicy, run_batch
from pipelines.outbound.changes import run_change

log = logging.getLogger(__name__)


@actor(queue_name=OUTBOUND_QUEUE)
def send_messages(message_ids: list[int], reserved_channel_id: int | None = None) -> None:
    """Send a batch of pending messages. Safe to run any number of times: a sent one is left
    alone. Retries and throttled sends come back as batches of their own; per-message
    failures never fail the batch, only a database outage does (the middleware retries it)."""
    send_batch(message_ids, reserved_channel_id=reserved_channel_id)


@actor(queue_name=OUTBOUND_QUEUE)
def send_message(message_id: int) -> None:
    """Send one pending message (API replies, scheduled sends, dead-letter requeues)."""
    send_batch([message_id])


@actor(queue_name=OUTBOUND_QUEUE)
def change_message(tenant_id: int, change_id: int) -> None:
    """Edit or delete a sent message at the provider, as an agent asked. Safe to run any
    number of times: a settled change is left alone."""
    d = deps.current()
    outbox_ids = run_change(
        tenant_id,
        change_id,
        db=d.db,
        adapters=d.adapters,
        http=d.http,
        last_attempt=is_last_attempt(d.settings.MAX_RETRIES),
    )
    publish_in_line(d, outbox_ids, what="send statuses")


def enqueue_sends(
    message_ids: Sequence[int],
    *,
    batch: int = SEND_BATCH,
    tenant_id: int | None = None,
    actor: dramatiq.Actor[..., Any] | None = None,
) -> None:
    """Enqueue sends for many pending messages, `batch` ids per broker message, to `actor`
    (send_messages unless said). After commit: a lost enqueue leaves pending rows for the
    sweeper, never a second send."""
    actor = actor or send_messages
    for start in range(0, len(message_ids), batch):
        chunk = list(message_ids[start : start + batch])
        if tenant_id is None:
            actor.send(chunk)
        else:  # the tenant labels a dead letter of the batch without a database lookup
            actor.send_with_options(args=(chunk,), tenant_id=tenant_id)


def send_batch(
    message_ids: Sequence[int],
    *,
    reserved_channel_id: int | None = None,
    policy: SendPolicy | None = None,
    resend_with: dramatiq.Actor[..., None] | None = None,
) -> BatchOutcome:
    """run_batch with this worker's dependencies, then enqueue its re-sends and publish.
    `policy` and `resend_with` (default: send_policy, send_messages) let other senders
    (campaigns) share the path with their own retry policy and actor."""
    d = deps.current()
    outcome = run_batch(
        message_ids,
        db=d.db,
        adapters=d.adapters,
        http=d.http,
        pool=d.send_pool,
        bucket=d.bucket,
        limits=limits_for,
        policy=policy or send_policy(d.settings),
        reserved_channel_id=reserved_channel_id,
    )
    for resend in outcome.resends:
        (resend_with or send_messages).send_with_options(
            args=(resend.message_ids,),
            kwargs={"reserved_channel_id": resend.reserved_channel_id},
            delay=resend.delay_ms or None,
        )
    publish_in_line(d, outcome.outbox_ids, what="send statuses")
    counts = Counter(outcome.statuses.values())
    log.info("sends done", extra={"stage": "ack", "count": len(message_ids), **counts})
    return outcome


def send_policy(settings: Settings) -> SendPolicy:
    """MAX_RETRIES retries with the middleware's backoff; dead letters filed as send_message's,
    so an operator's requeue sends that one message again."""
    return backoff_policy(
        settings,
        retries=settings.MAX_RETRIES,
        max_attempts=settings.MAX_RETRIES + 1,
        filed_as=send_message,
    )


def backoff_policy(
    settings: Settings,
    *,
    retries: int,
    max_attempts: int | None,
    filed_as: dramatiq.Actor[..., Any],
) -> SendPolicy:
    """Retryable failures back off like the middleware's retries; dead letters are filed as
    `filed_as`'s (the single-message actor an operator's requeue runs); `max_attempts` None
    means a retryable failure is never final."""
    retry = RetryPolicy(
        max_retries=retries,
        min_backoff_ms=settings.MIN_BACKOFF_MS,
        max_backoff_ms=settings.MAX_BACKOFF_MS,
    )
    return SendPolicy(
        backoff_ms=retry.backoff_ms,
        max_attempts=max_attempts,
        dead_letter_actor=filed_as.actor_name,
        dead_letter_queue=filed_as.queue_name,
    )
