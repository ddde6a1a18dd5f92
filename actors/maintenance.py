"""Sweeps the scheduler runs: re-offer work whose broker message was lost."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from actors.campaigns import reconcile as reconcile_campaigns
from actors.deliver import publish_outbox
from actors.deps import WorkerDeps
from actors.inbound import process_inbox
from actors.media import download_media
from actors.outbound import change_message, enqueue_sends
from actors.webhooks import deliver_webhook
from engine.db import system_tx
from engine.store.inbox import get_stale_inbox_ids
from engine.store.media import get_stale_media_downloads
from engine.store.message_changes import stale_changes
from engine.store.outbound import get_unsent_ids
from engine.store.outbox import get_stale_outbox_ids
from engine.store.send_batch import retry_lost_after_s
from engine.store.webhooks import get_unfinished_deliveries
from pipelines.media import SWEEP_WITHIN_S

log = logging.getLogger(__name__)

SWEEP_LIMIT = 5_000


@dataclass(frozen=True)
class SweepResult:
    inbox_requeued: int
    outbox_requeued: int
    sends_requeued: int = 0
    media_requeued: int = 0
    campaign_rows_reconciled: int = 0
    webhooks_requeued: int = 0
    changes_requeued: int = 0


def sweep(d: WorkerDeps) -> SweepResult:
    """Re-enqueue work left behind past its deadline: inbox, outbox, sends, media downloads,
    campaign recipients claimed but never sent (or whose status the row missed).

    Safe to run concurrently with workers: processing is idempotent and claims skip rows
    another worker holds. A flushed or restarted broker therefore loses nothing.
    """
    batch = d.settings.PIPELINE_BATCH_MAX
    with system_tx(d.db) as conn:
        inbox_ids = get_stale_inbox_ids(
            conn, older_than_s=d.settings.INBOX_SWEEP_AFTER_S, limit=SWEEP_LIMIT
        )
    # Send only after commit: until then the rows are locked, and a worker would skip them.
    for start in range(0, len(inbox_ids), batch):
        process_inbox.send(inbox_ids[start : start + batch])
    with system_tx(d.db) as conn:
        outbox_ids = get_stale_outbox_ids(
            conn, older_than_s=d.settings.INBOX_SWEEP_AFTER_S, limit=SWEEP_LIMIT
        )
    for start in range(0, len(outbox_ids), batch):
        publish_outbox.send(outbox_ids[start : start + batch])
    with system_tx(d.db) as conn:
        unsent_ids = get_unsent_ids(
            conn,
            older_than_s=d.settings.INBOX_SWEEP_AFTER_S,
            retry_lost_after_s=retry_lost_after_s(d.settings.MAX_BACKOFF_MS),
            limit=SWEEP_LIMIT,
        )
    # Campaign recipients first: their unsent messages are re-offered with the campaign's own
    # retry policy (reconcile), so they are not offered a second time here.
    campaigns = reconcile_campaigns(d)
    resent = set(campaigns.resend_ids)
    enqueue_sends([m for m in unsent_ids if m not in resent])
    with system_tx(d.db) as conn:
        downloads = get_stale_media_downloads(
            conn,
            older_than_s=d.settings.INBOX_SWEEP_AFTER_S,
            within_s=SWEEP_WITHIN_S,
            limit=SWEEP_LIMIT,
        )
    for message_id, index in downloads:
        download_media.send(message_id, index)
    with system_tx(d.db) as conn:
        webhook_ids = get_unfinished_deliveries(
            conn,
            older_than_s=d.settings.INBOX_SWEEP_AFTER_S,
            retry_lost_after_s=retry_lost_after_s(d.settings.MAX_BACKOFF_MS),
            limit=SWEEP_LIMIT,
        )
    for delivery_id in webhook_ids:
        deliver_webhook.send(delivery_id)
    with system_tx(d.db) as conn:
        changes = stale_changes(
            conn, older_than_s=d.settings.INBOX_SWEEP_AFTER_S, limit=SWEEP_LIMIT
        )
    for tenant_id, change_id in changes:
        change_message.send(tenant_id, change_id)
    result = SweepResult(
        changes_requeued=len(changes),
        webhooks_requeued=len(webhook_ids),
        inbox_requeued=len(inbox_ids),
        outbox_requeued=len(outbox_ids),
        sends_requeued=len(unsent_ids),
        media_requeued=len(downloads),
        campaign_rows_reconciled=len(resent) + campaigns.followed + campaigns.orphans,
    )
    if (
        inbox_ids
        or outbox_ids
        or unsent_ids
        or downloads
        or webhook_ids
        or changes
        or result.campaign_rows_reconciled
    ):
        log.warning(
            "sweep re-offered stale work",
            extra={
                "inbox": result.inbox_requeued,
                "outbox": result.outbox_requeued,
                "sends": result.sends_requeued,
                "media": result.media_requeued,
                "campaign_rows": result.campaign_rows_reconciled,
                "message_changes": result.changes_requeued,
            },
        )
    return result
