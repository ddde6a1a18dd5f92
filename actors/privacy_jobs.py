"""Scheduler job: apply each tenant's message retention in bounded batches."""

from __future__ import annotations

import logging

from actors.deps import WorkerDeps
from engine.db import system_tx, tenant_tx
from engine.privacy.redaction import delete_media_files
from engine.privacy.retention import apply_retention, get_retention_policies

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600
RETENTION_BATCH = 1000
# Per tenant and run, so one tenant's backlog cannot starve the others; the next run goes on.
RETENTION_MAX_BATCHES = 20


def run_retention(
    d: WorkerDeps, *, batch: int = RETENTION_BATCH, max_batches: int = RETENTION_MAX_BATCHES
) -> int:
    """Delete or anonymise messages past each tenant's `retention_days`; how many.

    Each batch commits on its own (short locks); media files go after their rows' commit.
    """
    with system_tx(d.db) as conn:
        policies = get_retention_policies(conn)
    total = 0
    for policy in policies:
        for _ in range(max_batches):
            with tenant_tx(d.db, policy.tenant_id) as conn:
                done = apply_retention(conn, policy, limit=batch)
            delete_media_files(d.storage, done.media_uris)
            total += done.messages
            if done.messages < batch:
                break
        log.info("retention applied", extra={"tenant_id": policy.tenant_id, "mode": policy.mode})
    return total
