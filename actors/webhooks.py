"""Outbound webhook actor: one signed POST of one delivery to a tenant's endpoint."""

from __future__ import annotations

import logging

from actors import deps
from actors.broker import actor
from pipelines.webhooks import WEBHOOKS_QUEUE, send_webhook

log = logging.getLogger(__name__)


@actor(queue_name=WEBHOOKS_QUEUE, time_limit_ms=60_000)
def deliver_webhook(delivery_id: int) -> None:
    """POST delivery `delivery_id`. WebhookFailedError retries with backoff; a rejection (4xx)
    dead-letters at once; so does exhausting the retries. Idempotent once delivered."""
    d = deps.current()
    outcome = send_webhook(delivery_id, db=d.db, http=d.http)
    log.debug("webhook done", extra={"delivery_id": delivery_id, "outcome": outcome})
