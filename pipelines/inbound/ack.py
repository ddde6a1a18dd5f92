"""ack: mark inbox rows done and dead-letter malformed parts with their reason."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection

from engine.events import (
    MalformedEvent,
    ProviderNotice,
)
from engine.metrics import timed_stage
from engine.store.dead_letters import NewDeadLetter, insert_dead_letter
from engine.store.inbox import InboxRow, mark_inbox_done_many
from pipelines.inbound.models import (
    INBOUND_ACTOR,
    INBOUND_QUEUE,
    BatchOutcome,
    ValidatedEvent,
)

log = logging.getLogger(__name__)

# ack -----------------------------------------------------------------------------------


@timed_stage("ack")
def ack(
    rows: Sequence[InboxRow],
    events: Sequence[ValidatedEvent],
    *,
    conn: Connection,
    outcome: BatchOutcome,
) -> None:
    """Mark each inbox row done; dead-letter malformed parts with their reason.

    A row whose every event was malformed is `dead`; one with some malformed parts is
    `partial`; one with only provider notices is `ignored`. System scope.
    """
    by_row: dict[int, list[ValidatedEvent]] = defaultdict(list)
    for v in events:
        by_row[v.inbox_id].append(v)
    done: list[tuple[int, str, str | None]] = []
    for row in rows:
        row_events = by_row.get(row.id, [])
        malformed = [v for v in row_events if isinstance(v.event, MalformedEvent)]
        notices = [v.event for v in row_events if isinstance(v.event, ProviderNotice)]
        for v in malformed:
            assert isinstance(v.event, MalformedEvent)
            _dead_letter_malformed(conn, row, v.event)
            outcome.rejected += 1
        useful = len(row_events) - len(malformed) - len(notices)
        if malformed and useful == 0:
            status = "dead"
        elif malformed:
            status = "partial"
        elif useful == 0:
            status = "ignored"
        else:
            status = "processed"
        note = "; ".join(
            [
                f"malformed: {v.event.reason}"
                for v in malformed
                if isinstance(v.event, MalformedEvent)
            ]
            + [
                f"notice {n.code}: {n.title}" if n.code is not None else f"notice: {n.title}"
                for n in notices
            ]
        )
        if not row_events:
            note = "nothing in this webhook is addressed to this channel"
        done.append((row.id, status, note[:1000] or None))
    mark_inbox_done_many(conn, done)


def _dead_letter_malformed(conn: Connection, row: InboxRow, event: MalformedEvent) -> None:
    payload = {
        "queue_name": INBOUND_QUEUE,
        "actor_name": INBOUND_ACTOR,
        "args": [[row.id]],
        "kwargs": {"reparse": True},
        "options": {},
        "detail": {"inbox_id": row.id, "fragment": event.fragment[:2000]},
    }
    insert_dead_letter(
        conn,
        NewDeadLetter(
            tenant_id=row.tenant_id,
            actor="inbound.validate",
            queue=INBOUND_QUEUE,
            message_id=None,
            payload_json=json.dumps(payload),
            error_class="InvalidPayloadError",
            error_message=event.reason[:1000],
            traceback=None,
            attempts=1,
        ),
    )
    log.info(
        "malformed event dead-lettered",
        extra={"inbox_id": row.id, "tenant_id": row.tenant_id, "channel_id": row.channel_id},
    )
