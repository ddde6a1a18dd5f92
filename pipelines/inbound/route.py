"""route: find or create the live ticket each inbound message belongs to."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Connection

from engine.events import (
    InboundMessage,
)
from engine.store import conversations as conv
from pipelines.inbound.models import (
    EnrichedEvent,
    RoutedEvent,
)

log = logging.getLogger(__name__)

# route ---------------------------------------------------------------------------------


def route(events: Sequence[EnrichedEvent], *, conn: Connection) -> list[RoutedEvent]:
    """Find or create the live ticket of each inbound message's contact.

    Reactions and statuses attach to existing messages and need no ticket; neither does a
    message stored before (a redelivery must not reopen a ticket closed since). Queue, agent
    and bot decisions are made here too once automation exists; today every new ticket
    waits, pending, for any agent.
    """
    out: list[RoutedEvent] = []
    for e in events:
        v = e.validated
        ticket = None
        if (
            isinstance(v.event, InboundMessage)
            and e.contact_id is not None
            and conv.get_message_by_provider_id(
                conn, channel_id=v.channel_id, provider_message_id=v.event.provider_message_id
            )
            is None
        ):
            ticket = conv.find_or_create_ticket(
                conn, tenant_id=v.tenant_id, channel_id=v.channel_id, contact_id=e.contact_id
            )
        out.append(RoutedEvent(enriched=e, ticket=ticket))
    return out
