"""reconcile: claimed recipients left behind by a crash follow their message, never a blind resend.

A claimed row always has its message (claim and record share one transaction), so what a
crash can leave is a message whose send was never enqueued (or whose broker message was lost)
or a status the row missed. The message decides: sent, delivered, read or failed → the row
follows; pending and never tried → its send is offered again (idempotent by message id);
pending and tried → the send's own retries own it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine

from engine.db import system_tx
from engine.store import campaign_sending as store
from pipelines.campaigns.progress import follow_message_statuses, record_counts

log = logging.getLogger(__name__)

RECONCILE_LIMIT = 5_000
_FINAL = frozenset({"sent", "delivered", "read", "failed"})


@dataclass
class Reconciled:
    resend_ids: list[int] = field(default_factory=list)  # (message id) sends to enqueue again
    followed: int = 0  # rows moved to their message's status
    orphans: int = 0  # claimed rows whose message was deleted: failed "message_missing"
    outbox_ids: list[int] = field(default_factory=list)


def reconcile_claims(
    db: Engine, *, older_than_s: int, retry_lost_after_s: int, limit: int = RECONCILE_LIMIT
) -> Reconciled:
    """Repair rows claimed more than `older_than_s` ago and still `claimed`. Safe at any time,
    alongside workers: every change is forward-only and every send idempotent."""
    out = Reconciled()
    with system_tx(db) as conn:
        stale = store.get_stale_claims(
            conn, older_than_s=older_than_s, retry_lost_after_s=retry_lost_after_s, limit=limit
        )
        finals: dict[int, list[int]] = defaultdict(list)
        orphans: dict[int, list[int]] = defaultdict(list)
        for claim in stale:
            if claim.message_id is None:
                orphans[claim.tenant_id].append(claim.row_id)
            elif claim.message_status in _FINAL:
                finals[claim.tenant_id].append(claim.message_id)
            elif claim.lost:
                out.resend_ids.append(claim.message_id)
        for tenant_id in sorted(finals):
            out.outbox_ids += follow_message_statuses(
                conn, tenant_id=tenant_id, message_ids=finals[tenant_id]
            )
            out.followed += len(finals[tenant_id])
        for tenant_id in sorted(orphans):
            failed = store.fail_orphans(conn, tenant_id=tenant_id, row_ids=orphans[tenant_id])
            for campaign_id, n in sorted(failed.items()):
                out.orphans += n
                deltas = {"pending": -n, "failed": n}
                out.outbox_ids += record_counts(
                    conn, tenant_id=tenant_id, campaign_id=campaign_id, deltas=deltas
                )
    if out.orphans:
        # By design impossible unless a message was deleted under a live campaign.
        log.error("claimed campaign rows without a message", extra={"count": out.orphans})
    return out
