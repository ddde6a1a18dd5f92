"""Send actor: one outbound message through its channel's provider, then its realtime event."""

from __future__ import annotations

import logging

from actors import deps
from actors.broker import actor
from actors.deliver import publish_outbox
from actors.middleware import is_last_attempt
from engine.ratelimit import limits_for
from pipelines.outbound import OUTBOUND_QUEUE, run_send

log = logging.getLogger(__name__)


@actor(queue_name=OUTBOUND_QUEUE)
def send_message(message_id: int) -> None:
    """Send a pending message. Safe to run any number of times: a sent one is left alone."""
    d = deps.current()
    outcome = run_send(
        message_id,
        db=d.db,
        adapters=d.adapters,
        http=d.http,
        bucket=d.bucket,
        limits=limits_for,
        last_attempt=is_last_attempt(d.settings.MAX_RETRIES),
        publish=publish_outbox.send,
    )
    if outcome.outbox_ids:
        publish_outbox.send(outcome.outbox_ids)
    log.info(
        "send done",
        extra={"stage": "ack", "message_id": message_id, "status": outcome.status},
    )
