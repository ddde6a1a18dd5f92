"""The whole inbound batch: every stage, tenant by tenant, in the caller's transaction."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from adapters.base import InboundAdapter
from engine.db import set_system, set_tenant
from engine.events import (
    ChannelType,
    MalformedEvent,
    ProviderNotice,
)
from engine.store.inbox import InboxRow
from pipelines.inbound.ack import ack
from pipelines.inbound.enrich import enrich
from pipelines.inbound.models import (
    BatchOutcome,
    ValidatedEvent,
)
from pipelines.inbound.persist import persist
from pipelines.inbound.route import route
from pipelines.inbound.validate import validate

log = logging.getLogger(__name__)

# the whole batch -----------------------------------------------------------------------


def process_batch(
    rows: Sequence[InboxRow],
    *,
    conn: Connection,
    adapters: Mapping[ChannelType, InboundAdapter],
) -> BatchOutcome:
    """Run every stage over claimed rows, tenant by tenant, in the caller's transaction."""
    validated = validate(rows, adapters=adapters)
    outcome = BatchOutcome()
    by_tenant: dict[int, list[ValidatedEvent]] = defaultdict(list)
    for v in validated:
        if not isinstance(v.event, MalformedEvent | ProviderNotice):
            by_tenant[v.tenant_id].append(v)
    for tenant_id in sorted(by_tenant):
        set_tenant(conn, tenant_id)
        part = persist(route(enrich(by_tenant[tenant_id], conn=conn), conn=conn), conn=conn)
        _merge(outcome, part)
    set_system(conn)
    ack(rows, validated, conn=conn, outcome=outcome)
    return outcome


def _merge(into: BatchOutcome, part: BatchOutcome) -> None:
    into.outbox_ids.extend(part.outbox_ids)
    into.messages_stored += part.messages_stored
    into.duplicates += part.duplicates
    into.statuses_applied += part.statuses_applied
    into.tickets_created += part.tickets_created
