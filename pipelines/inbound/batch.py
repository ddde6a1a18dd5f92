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
from engine.store import conversations as conv
from engine.store.inbox import InboxRow
from pipelines.inbound.ack import ack
from pipelines.inbound.automate import automate
from pipelines.inbound.enrich import enrich, lock_key_of
from pipelines.inbound.models import (
    BatchOutcome,
    ValidatedEvent,
)
from pipelines.inbound.persist import persist
from pipelines.inbound.route import route
from pipelines.inbound.validate import validate

log = logging.getLogger(__name__)


def process_batch(
    rows: Sequence[InboxRow],
    *,
    conn: Connection,
    adapters: Mapping[ChannelType, InboundAdapter],
) -> BatchOutcome:
    """Run every stage over claimed rows, tenant by tenant, in the caller's transaction.

    Rows about a person another transaction is working on are deferred, not waited for:
    they stay pending and are listed in `deferred_inbox_ids` for the caller to offer again.
    """
    validated = validate(rows, adapters=adapters)
    ready, deferred = _lock_people(rows, validated, conn=conn)
    outcome = BatchOutcome(deferred_inbox_ids=sorted(deferred))
    by_tenant: dict[int, list[ValidatedEvent]] = defaultdict(list)
    for v in validated:
        if v.inbox_id in ready and not isinstance(v.event, MalformedEvent | ProviderNotice):
            by_tenant[v.tenant_id].append(v)
    for tenant_id in sorted(by_tenant):
        set_tenant(conn, tenant_id)
        routed = route(enrich(by_tenant[tenant_id], conn=conn), conn=conn)
        part = automate(routed, persist(routed, conn=conn), conn=conn)
        _merge(outcome, part)
    set_system(conn)
    ack(
        [r for r in rows if r.id in ready],
        [v for v in validated if v.inbox_id in ready],
        conn=conn,
        outcome=outcome,
    )
    return outcome


def _lock_people(
    rows: Sequence[InboxRow], validated: Sequence[ValidatedEvent], *, conn: Connection
) -> tuple[set[int], set[int]]:
    """Take the per-person locks this batch needs without waiting: (ready rows, deferred rows).

    A row is ready only when it holds the lock of every person its events are about, so the
    events of one person are applied by one transaction at a time, in timestamp order.
    """
    needed: dict[int, set[int]] = defaultdict(set)
    for v in validated:
        key = lock_key_of(v)
        if key is not None:
            needed[v.inbox_id].add(key)
    taken = conv.try_lock_contact_keys(conn, [k for keys in needed.values() for k in keys])
    deferred = {row_id for row_id, keys in needed.items() if not keys <= taken}
    return {r.id for r in rows} - deferred, deferred


def _merge(into: BatchOutcome, part: BatchOutcome) -> None:
    into.outbox_ids.extend(part.outbox_ids)
    into.messages_stored += part.messages_stored
    into.duplicates += part.duplicates
    into.statuses_applied += part.statuses_applied
    into.tickets_created += part.tickets_created
    into.media_downloads.extend(part.media_downloads)
    into.sends.extend(part.sends)
