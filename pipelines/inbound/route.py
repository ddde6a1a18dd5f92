"""route: find or create the live ticket each inbound message belongs to."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Connection

from engine.events import (
    InboundMessage,
)
from engine.metrics import timed_stage
from engine.store import conversations as conv
from pipelines.inbound.models import (
    EnrichedEvent,
    RoutedEvent,
)

log = logging.getLogger(__name__)

# route ---------------------------------------------------------------------------------


@timed_stage("route")
def route(events: Sequence[EnrichedEvent], *, conn: Connection) -> list[RoutedEvent]:
    """Find or create the live ticket of each inbound message's contact.

    Reactions and statuses attach to existing messages and need no ticket; neither does a
    message stored before (a redelivery must not reopen a ticket closed since). Stored ids and
    live tickets are looked up for the whole batch in two round trips. Queue, agent and bot
    decisions are made here too once automation exists; today every new ticket waits,
    pending, for any agent.
    """
    messages = [
        (e, e.validated.event)
        for e in events
        if isinstance(e.validated.event, InboundMessage) and e.contact_id is not None
    ]
    stored = conv.get_stored_provider_ids(
        conn, [(e.validated.channel_id, m.provider_message_id) for e, m in messages]
    )
    tenant_id = events[0].validated.tenant_id if events else 0
    live = conv.get_live_tickets(
        conn,
        tenant_id=tenant_id,
        pairs=sorted({(e.validated.channel_id, e.contact_id) for e, _ in messages}),  # type: ignore[misc]
    )
    out: list[RoutedEvent] = []
    for e in events:
        v = e.validated
        ticket = None
        if (
            isinstance(v.event, InboundMessage)
            and e.contact_id is not None
            and (v.channel_id, v.event.provider_message_id) not in stored
        ):
            ticket = live.get((v.channel_id, e.contact_id))
            if ticket is None:
                ticket = conv.find_or_create_ticket(
                    conn, tenant_id=v.tenant_id, channel_id=v.channel_id, contact_id=e.contact_id
                )
                live[(v.channel_id, e.contact_id)] = ticket.model_copy(update={"created": False})
        out.append(RoutedEvent(enriched=e, ticket=ticket))
    return out
