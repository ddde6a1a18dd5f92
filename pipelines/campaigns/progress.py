"""Statuses flow back: a campaign message's new status moves its recipient and the live counts.

`follow_message_statuses` is the hook the status paths call (outbound ack and failure, inbound
status webhooks), in their own transaction, after the message changed. For messages that are
not a campaign's it costs one index probe and does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from engine.campaigns import CampaignStatus
from engine.store import campaign_sending as store
from engine.store.campaigns import insert_progress

# A campaign announces its progress (`campaign.progress`) at most this often.
PROGRESS_EVERY_S = 1.0


def follow_message_statuses(
    conn: Connection, *, tenant_id: int, message_ids: Sequence[int]
) -> list[int]:
    """Move the campaign rows of `message_ids` to their messages' statuses and the campaigns'
    counters with them; the `campaign.progress` outbox ids to publish after commit.

    Idempotent and forward-only: a status seen before moves nothing. Campaigns are updated in
    id order, so two transactions touching the same campaigns never deadlock.
    """
    moves = store.follow_messages(conn, tenant_id=tenant_id, message_ids=message_ids)
    outbox_ids: list[int] = []
    for campaign_id, deltas in sorted(store.deltas_of(moves).items()):
        outbox_ids += record_counts(
            conn, tenant_id=tenant_id, campaign_id=campaign_id, deltas=deltas
        )
    return outbox_ids


def record_counts(
    conn: Connection,
    *,
    tenant_id: int,
    campaign_id: int,
    deltas: Mapping[str, int],
    throttle_s: float = PROGRESS_EVERY_S,
) -> list[int]:
    """Add `deltas` to the campaign's counters; announce them unless announced within
    `throttle_s` (0: always). The outbox id of the announcement, if any."""
    change = store.add_counts(
        conn, tenant_id=tenant_id, campaign_id=campaign_id, deltas=deltas, throttle_s=throttle_s
    )
    if change is None or not change.announce:
        return []
    outbox_id = insert_progress(
        conn,
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        status=CampaignStatus(change.status),
        counts=change.counts,
    )
    return [outbox_id]
