"""Campaign actors and scheduler jobs: start due campaigns, tick running ones, send their messages.

The scheduler (one leader) starts campaigns and, every second, enqueues one `campaign_tick` per
campaign with work due; workers run the ticks, so claiming scales out with the workers while
the leader only lists ids. Pace comes from next_send_at, not from delayed broker messages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from actors import deps, outbound
from actors.broker import actor
from actors.deliver import publish_outbox
from actors.deps import WorkerDeps
from actors.outbound import backoff_policy, send_batch
from config import Settings
from engine.ratelimit import limits_for
from engine.store.send_batch import retry_lost_after_s
from pipelines.campaigns import CAMPAIGNS_QUEUE
from pipelines.campaigns.reconcile import Reconciled, reconcile_claims
from pipelines.campaigns.start import start_due_campaigns
from pipelines.campaigns.tick import campaigns_due, tick_campaign
from pipelines.outbound import OUTBOUND_QUEUE, SendPolicy, run_send

log = logging.getLogger(__name__)

TICK_EVERY_S = 1  # how often the scheduler starts due campaigns and ticks running ones
# A campaign message outlives a provider outage: retryable failures never mark the recipient
# failed; backoff grows to MAX_BACKOFF_MS (5 min by default). The one-message actor retries
# about a day (288 × 5 min) before its dead letter.
CAMPAIGN_SEND_RETRIES = 288


@actor(queue_name=CAMPAIGNS_QUEUE, max_retries=3)
def campaign_tick(campaign_id: int) -> None:
    """Claim what is due for one campaign, then enqueue its sends. Idempotent: a duplicate
    tick finds the campaign locked or not yet due."""
    d = deps.current()
    outcome = tick_campaign(campaign_id, db=d.db, limits=limits_for)
    enqueue_sends(outcome.message_ids, tenant_id=outcome.tenant_id)
    if outcome.outbox_ids:
        publish_outbox.send(outcome.outbox_ids)
    log.debug(
        "campaign tick",
        extra={
            "campaign_id": campaign_id,
            "state": outcome.state,
            "sends": len(outcome.message_ids),
        },
    )


@actor(queue_name=OUTBOUND_QUEUE)
def send_campaign_messages(message_ids: list[int], reserved_channel_id: int | None = None) -> None:
    """Send a batch of campaign messages: send_messages' pipeline (two transactions per batch,
    provider calls on the worker's pool) with the campaign policy. Safe to run any number of
    times: a message sent, failed or held by another send is left alone.

    A retryable failure is never final here, so an outage leaves the recipient pending (the
    tick stops claiming meanwhile) and the message is sent again after a backoff capped at
    MAX_BACKOFF_MS; permanent errors (invalid number, opted out) fail it at once with the
    provider's code and a dead letter filed as send_campaign_message.
    """
    send_batch(
        message_ids,
        reserved_channel_id=reserved_channel_id,
        policy=campaign_send_policy(deps.current().settings),
        resend_with=send_campaign_messages,
    )


@actor(queue_name=OUTBOUND_QUEUE, max_retries=CAMPAIGN_SEND_RETRIES)
def send_campaign_message(message_id: int) -> None:
    """One campaign message, retried by the middleware: what a dead letter's requeue runs."""
    d = deps.current()
    outcome = run_send(
        message_id,
        db=d.db,
        adapters=d.adapters,
        http=d.http,
        bucket=d.bucket,
        limits=limits_for,
        last_attempt=False,
        publish=publish_outbox.send,
    )
    if outcome.outbox_ids:
        publish_outbox.send(outcome.outbox_ids)
    log.info("campaign send done", extra={"message_id": message_id, "status": outcome.status})


def campaign_send_policy(settings: Settings) -> SendPolicy:
    """Retryable failures back off like the middleware's retries and are never final."""
    return backoff_policy(
        settings, retries=CAMPAIGN_SEND_RETRIES, max_attempts=None, filed_as=send_campaign_message
    )


def enqueue_sends(message_ids: Sequence[int], *, tenant_id: int | None) -> None:
    """After commit, SEND_BATCH ids per broker message: the rows and messages exist, so a lost
    enqueue is found by the sweep."""
    outbound.enqueue_sends(message_ids, tenant_id=tenant_id, actor=send_campaign_messages)


def start_due(d: WorkerDeps) -> list[int]:
    """Scheduler job: start campaigns whose time has come; tick each at once."""
    outcome = start_due_campaigns(d.db)
    if outcome.outbox_ids:
        publish_outbox.send(outcome.outbox_ids)
    for campaign_id in outcome.started:
        campaign_tick.send(campaign_id)
    return outcome.started


def enqueue_ticks(d: WorkerDeps) -> list[int]:
    """Scheduler job (every second): one tick for each campaign with work due."""
    campaign_ids = campaigns_due(d.db)
    for campaign_id in campaign_ids:
        campaign_tick.send(campaign_id)
    return campaign_ids


def reconcile(d: WorkerDeps) -> Reconciled:
    """Sweep part: claimed recipients a crash left behind follow their message or are resent."""
    outcome = reconcile_claims(
        d.db,
        older_than_s=d.settings.INBOX_SWEEP_AFTER_S,
        retry_lost_after_s=retry_lost_after_s(d.settings.MAX_BACKOFF_MS),
    )
    enqueue_sends(outcome.resend_ids, tenant_id=None)
    if outcome.outbox_ids:
        publish_outbox.send(outcome.outbox_ids)
    return outcome
