"""Inbound actor: claim inbox rows, run the pipeline in one transaction, hand off delivery."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from actors import deps
from actors.broker import actor
from actors.deliver import publish_in_line
from actors.deps import WorkerDeps
from actors.media import download_media
from actors.middleware import is_last_attempt
from actors.outbound import enqueue_sends
from engine.db import system_tx
from engine.errors import PermanentError, RetryableError
from engine.store.inbox import claim_inbox, mark_inbox_dead
from pipelines import inbound
from pipelines.poison import PoisonBatchError, poison_guard

log = logging.getLogger(__name__)

DEFER_DELAY_MS = 50


@actor(queue_name=inbound.INBOUND_QUEUE)
def process_inbox(inbox_ids: list[int], reparse: bool = False) -> None:
    """Process a batch of inbox rows. Safe to run any number of times for the same ids."""
    d = deps.current()
    try:
        with system_tx(d.db) as conn, poison_guard():
            rows = claim_inbox(conn, inbox_ids, reparse=reparse)
            outcome = inbound.process_batch(rows, conn=conn, adapters=d.adapters)
    except PoisonBatchError as exc:
        _give_up(d, inbox_ids, reparse, exc, note=str(exc))
        return
    except Exception as exc:
        # Retried as usual; only the last attempt of a failure that is not the world's
        # (a database or broker outage leaves the rows pending for the sweeper) gives up.
        last = isinstance(exc, PermanentError) or is_last_attempt(d.settings.MAX_RETRIES)
        if _outage(exc) or not last:
            raise
        _give_up(d, inbox_ids, reparse, exc, note=f"{type(exc).__name__}: {str(exc)[:300]}")
        return
    _hand_off(d, outcome, reparse)
    log.info(
        "inbox batch processed",
        extra={
            "stage": "ack",
            "batch_size": len(inbox_ids),
            "claimed": len(rows),
            "stored": outcome.messages_stored,
            "duplicates": outcome.duplicates,
            "statuses": outcome.statuses_applied,
            "rejected": outcome.rejected,
            "tickets_created": outcome.tickets_created,
            "deferred": len(outcome.deferred_inbox_ids),
        },
    )


def _give_up(
    d: WorkerDeps, inbox_ids: list[int], reparse: bool, exc: Exception, *, note: str
) -> None:
    """A batch that cannot succeed as it is: split it, so one bad row does not sink its
    neighbours; a single row is marked dead (the sweeper leaves it) and dead-lettered."""
    if len(inbox_ids) > 1:
        for inbox_id in inbox_ids:
            process_inbox.send([inbox_id], reparse)
        log.warning(
            "batch split after failure",
            extra={"batch_size": len(inbox_ids), "error": type(exc).__name__},
        )
        return
    with system_tx(d.db) as conn:
        mark_inbox_dead(conn, inbox_ids, note=note)
    raise PermanentError(note) from exc


def _outage(exc: Exception) -> bool:
    """A failure of a service rather than of the rows: retrying later can succeed."""
    return isinstance(
        exc, RetryableError | OperationalError | InterfaceError | PoolTimeoutError | RedisError
    )


def _hand_off(d: WorkerDeps, outcome: inbound.BatchOutcome, reparse: bool) -> None:
    """After commit: realtime events, media downloads, and rows whose person was busy.

    Events are published in-line, as sends do: a broker message per batch only to publish
    would cost more than publishing. If publishing fails, the rows stay unpublished and the
    sweeper re-offers them.
    """
    publish_in_line(d, outcome.outbox_ids, what="inbound events")
    for message_id, index in outcome.media_downloads:
        download_media.send(message_id, index)
    if outcome.sends:
        enqueue_sends(outcome.sends)
    if outcome.deferred_inbox_ids:
        process_inbox.send_with_options(
            args=(outcome.deferred_inbox_ids, reparse), delay=DEFER_DELAY_MS
        )
