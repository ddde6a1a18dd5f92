"""Scheduler jobs of routing: hand out waiting tickets, close inactive ones, check SLAs.

Each job walks the tenants concerned, one tenant transaction each, and after commit
publishes the events and enqueues the sends that transaction recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection

from actors.deliver import publish_outbox
from actors.deps import WorkerDeps
from actors.outbound import send_message
from engine.db import system_tx, tenant_tx
from engine.routing.distribution import distribute_waiting, get_waiting_tenants
from engine.routing.lifecycle import (
    auto_close_ticket,
    get_auto_close_tenants,
    get_farewell,
    get_inactive_ticket_ids,
)
from engine.routing.sla import check_sla
from engine.store.sla import get_sla_tenants
from pipelines.outbound import SendRequest, record_send

log = logging.getLogger(__name__)

DISTRIBUTE_EVERY_S = 30
AUTO_CLOSE_EVERY_S = 60
SLA_EVERY_S = 15

# One tenant's work: (outbox ids to publish, message ids to send), recorded in its transaction.
TenantWork = Callable[[Connection, int], tuple[list[int], list[int]]]


def _each_tenant(
    deps: WorkerDeps, tenants: Callable[[Connection], list[int]], work: TenantWork
) -> int:
    """Run `work` per tenant in its own transaction; publish after each commit. Items done."""
    with system_tx(deps.db) as conn:
        tenant_ids = tenants(conn)
    done = 0
    for tenant_id in tenant_ids:
        with tenant_tx(deps.db, tenant_id) as conn:
            outbox_ids, sends = work(conn, tenant_id)
        for message_id in sends:
            send_message.send(message_id)
        if outbox_ids:
            publish_outbox.send(outbox_ids)
        done += len(outbox_ids)
    return done


def distribute_all(deps: WorkerDeps) -> int:
    """The safety net behind event-driven distribution: assign what waits wherever it can."""

    def work(conn: Connection, tenant_id: int) -> tuple[list[int], list[int]]:
        done = distribute_waiting(conn, tenant_id=tenant_id)
        return [a.outbox_id for a in done], []

    return _each_tenant(deps, get_waiting_tenants, work)


def close_inactive(deps: WorkerDeps, *, now: datetime | None = None) -> int:
    """Close tickets idle past their tenant's `auto_close_after_h`, each with its farewell."""
    at = now or datetime.now(UTC)
    closed = 0

    def work(conn: Connection, tenant_id: int) -> tuple[list[int], list[int]]:
        nonlocal closed
        outbox_ids: list[int] = []
        sends: list[int] = []
        for ticket_id in get_inactive_ticket_ids(conn, tenant_id=tenant_id, now=at):
            result = auto_close_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
            outbox_ids += result.outbox_ids
            closed += 1
            farewell = get_farewell(conn, tenant_id=tenant_id, ticket_id=ticket_id)
            if farewell is not None:
                sent = record_send(
                    conn,
                    tenant_id=tenant_id,
                    ticket_id=ticket_id,
                    request=SendRequest(body=farewell),
                    user_id=None,
                    # Automatic, like a bot's: it answers nobody (first response, answered).
                    send_type="bot",
                    event_data={"farewell": True},
                )
                outbox_ids += sent.outbox_ids
                sends.append(sent.message_id)
        return outbox_ids, sends

    _each_tenant(deps, get_auto_close_tenants, work)
    if closed:
        log.info("inactive tickets closed", extra={"count": closed})
    return closed


def check_slas(deps: WorkerDeps, *, now: datetime | None = None) -> int:
    """Record, announce and escalate SLA breaches due by `now`; how many were new."""
    at = now or datetime.now(UTC)
    breached = 0

    def work(conn: Connection, tenant_id: int) -> tuple[list[int], list[int]]:
        nonlocal breached
        result = check_sla(conn, tenant_id=tenant_id, now=at)
        breached += len(result.breaches)
        return list(result.outbox_ids), []

    _each_tenant(deps, get_sla_tenants, work)
    return breached
