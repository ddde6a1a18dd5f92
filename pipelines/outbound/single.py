"""One message through the batch path, failing by raising: for actors whose retries the
middleware runs (send_campaign_message), until they enqueue batches instead."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine

from adapters.base import OutboundAdapter
from engine.events import ChannelType
from pipelines.outbound.batch import run_batch
from pipelines.outbound.pace import Bucket, Limits
from pipelines.outbound.send import ThrottledError
from pipelines.outbound.settle import SendPolicy

Publish = Callable[[list[int]], object]


@dataclass
class SendOutcome:
    status: str
    message_id: int
    provider_message_id: str | None = None
    outbox_ids: list[int] = field(default_factory=list)


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

    Raises ThrottledError (wait for a token; the middleware does not count it as a retry),
    RetryableError (provider down or 429: retry; the message stays pending until the last
    attempt, which marks it failed) and PermanentError (the message is marked failed first,
    its status published; the middleware files the dead letter).
    """
    outcome = run_batch(
        [message_id],
        db=db,
        adapters=adapters,
        http=http,
        pool=None,
        bucket=bucket,
        limits=limits,
        policy=SendPolicy(
            backoff_ms=lambda _: 0,  # the middleware backs off
            max_attempts=1 if last_attempt else None,
            record_dead_letters=False,
            reserve_slots=False,
        ),
    )
    status = outcome.statuses.get(message_id, "skipped")
    if status == "throttled":
        raise ThrottledError(
            "the channel is at its send rate", delay_ms=outcome.waits_ms[message_id]
        )
    error = outcome.errors.get(message_id)
    if error is not None:
        if outcome.outbox_ids:
            publish(outcome.outbox_ids)
        raise error
    return SendOutcome(
        status=status,
        message_id=message_id,
        provider_message_id=outcome.provider_ids.get(message_id),
        outbox_ids=outcome.outbox_ids,
    )
