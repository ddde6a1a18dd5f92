"""Campaign actors and scheduler jobs: start due campaigns, tick running ones, send their messages.

The scheduler (one leader) starts campaigns and, every second, enqueues one `campaign_tick` per
campaign with work due; workers run the ticks, so claiming scales out with the workers while
the leader only lists ids. Pace comes from next_send_at, not from delayed broker messages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from actors import deps
from actors.broker import actor
from actors.deliver import publish_outbox
from actors.deps import WorkerDeps
from engine.ratelimit import limits_for
from pipelines.campaigns import CAMPAIGNS_QUEUE
from pipelines.campaigns.reconcile import Reconciled, reconcile_claims
from pipelines.campaigns.start import start_due_campaigns
from pipelines.campaigns.tick import campaigns_due, tick_campaign
from pipelines.outbound import OUTBOUND_QUEUE, run_send

log = logging.getLogger(__name__)

TICK_EVERY_S = 1  # how often the scheduler starts due campaigns and ticks running ones
# A campaign message outlives a provider outage: retryable failures are retried (backoff capped
# by MAX_BACKOFF_MS, 5 min by default) for about a day, and never mark the recipient failed.
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


@actor(queue_name=OUTBOUND_QUEUE, max_retries=CAMPAIGN_SEND_RETRIES)
def send_campaign_message(message_id: int) -> None:
    """send_message's twin for campaign messages: same pipeline, a retry policy of its own.

    A retryable failure is never the last attempt here, so an outage leaves the recipient
    pending (the tick stops claiming meanwhile) instead of failing it; permanent errors
    (invalid number, opted out) still fail it at once with the provider's code.
    """
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


def enqueue_sends(message_ids: Iterable[int], *, tenant_id: int | None) -> None:
    """After commit: the rows and messages exist, so a lost enqueue is found by the sweep."""
    for message_id in message_ids:
        # the tenant labels a dead letter without a database lookup
        send_campaign_message.send_with_options(args=(message_id,), tenant_id=tenant_id)


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
    outcome = reconcile_claims(d.db, older_than_s=d.settings.INBOX_SWEEP_AFTER_S)
    for message_id in outcome.resend_ids:
        send_campaign_message.send(message_id)
    if outcome.outbox_ids:
        publish_outbox.send(outcome.outbox_ids)
    return outcome
