"""Scheduler jobs of automation: hand over tickets whose customer stopped answering the bot."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from actors.deliver import publish_outbox
from actors.deps import WorkerDeps
from actors.outbound import enqueue_sends
from engine.db import system_tx
from pipelines.bot_timeouts import hand_off_idle_bots

log = logging.getLogger(__name__)

# A waiting bot times out within this many seconds of its deadline.
BOT_TIMEOUT_EVERY_S = 15


def time_out_idle_bots(d: WorkerDeps) -> int:
    """One pass: hand over every idle bot's ticket, then send and announce; how many."""
    with system_tx(d.db) as conn:
        handed, outcome = hand_off_idle_bots(conn, now=datetime.now(UTC))
    # After commit: the sends find their rows, and a lost enqueue is left to the sweeper.
    enqueue_sends(outcome.sends)
    if outcome.outbox_ids:
        publish_outbox.send(outcome.outbox_ids)
    return handed
