"""SLA checks: find breached clocks of live tickets, record each once, announce and escalate.

A policy applies to the tickets of its queue, of contacts with its tag, or (neither set) to
every ticket. Clocks: `first_response` from creation to the first reply, `next_response` from
an unanswered customer message to the answer, `resolution` from creation to closing. With
`business_hours_only` they run only within the ticket's queue's (else the tenant's) hours.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, RowMapping, text

from engine.events import Frozen
from engine.routing.distribution import distribute
from engine.routing.hours import NeverOpenError, add_business_seconds, effective_hours
from engine.settings_registry import BusinessHours
from engine.store.outbox import insert_outbox
from engine.store.sla import insert_breach
from engine.store.ticket_log import lock_ticket, record_ticket_change, update_ticket

log = logging.getLogger(__name__)

SLA_BREACHED = "sla.breached"

_CLOCKS = text(
    """
    SELECT t.id AS ticket_id, t.queue_id, t.created_at, t.first_response_at,
           t.last_inbound_at, t.answered,
           p.id AS policy_id, p.first_response_s, p.next_response_s, p.resolution_s,
           p.business_hours_only, p.escalate_to_queue_id, p.escalate_to_user_id,
           b.first_response_breached, b.next_response_breached, b.resolution_breached
    FROM tickets t
    JOIN sla_policies p ON p.tenant_id = t.tenant_id AND (
        p.queue_id = t.queue_id
        OR EXISTS (SELECT 1 FROM contact_tags ct
                   WHERE ct.tenant_id = t.tenant_id AND ct.contact_id = t.contact_id
                     AND ct.tag_id = p.tag_id)
        OR (p.queue_id IS NULL AND p.tag_id IS NULL))
    -- The newest breach recorded per clock: a clock with one since it started is done.
    CROSS JOIN LATERAL (
        SELECT max(e.due_at) FILTER (WHERE e.kind = 'first_response') AS first_response_breached,
               max(e.due_at) FILTER (WHERE e.kind = 'next_response') AS next_response_breached,
               max(e.due_at) FILTER (WHERE e.kind = 'resolution') AS resolution_breached
        FROM sla_events e
        WHERE e.tenant_id = t.tenant_id AND e.policy_id = p.id AND e.ticket_id = t.id) b
    WHERE t.tenant_id = :t AND t.status IN ('pending', 'open') AND t.created_at <= :now
    ORDER BY t.id, p.id
    """
)
_REASSIGN = text(
    """
    UPDATE tickets SET user_id = :user_id, updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)
_REQUEUE = text(
    """
    UPDATE tickets SET queue_id = :queue_id, user_id = NULL, status = 'pending',
        updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)


class Breach(Frozen):
    sla_event_id: int
    ticket_id: int
    policy_id: int
    kind: str
    due_at: datetime


class SlaCheck(Frozen):
    breaches: tuple[Breach, ...]
    outbox_ids: tuple[int, ...]


def _running_clocks(row: RowMapping) -> list[tuple[str, int, datetime]]:
    """(kind, target seconds, clock start) of each clock still running for this ticket and
    not yet breached (a breach due since the clock started ends it; see insert_breach)."""
    clocks: list[tuple[str, int, datetime]] = []
    if row["first_response_s"] and row["first_response_at"] is None:
        clocks.append(("first_response", row["first_response_s"], row["created_at"]))
    awaiting = row["first_response_at"] is not None and not row["answered"]
    if row["next_response_s"] and awaiting and row["last_inbound_at"] is not None:
        clocks.append(("next_response", row["next_response_s"], row["last_inbound_at"]))
    if row["resolution_s"]:
        clocks.append(("resolution", row["resolution_s"], row["created_at"]))
    return [
        (kind, target_s, start)
        for kind, target_s, start in clocks
        if row[f"{kind}_breached"] is None or row[f"{kind}_breached"] < start
    ]


def check_sla(conn: Connection, *, tenant_id: int, now: datetime) -> SlaCheck:
    """Record the breaches due by `now` (each once), announce them, escalate as configured.

    Runs in the tenant's transaction; `now` is passed in so tests control the clock.
    """
    breaches: list[Breach] = []
    outbox_ids: list[int] = []
    hours_of: dict[int | None, BusinessHours | None] = {}  # by queue, read once per sweep
    for row in conn.execute(_CLOCKS, {"t": tenant_id, "now": now}).mappings().all():
        clocks = _running_clocks(row)
        hours = None
        if clocks and row["business_hours_only"]:
            queue_id = row["queue_id"]
            if queue_id not in hours_of:
                hours_of[queue_id] = effective_hours(conn, tenant_id=tenant_id, queue_id=queue_id)
            hours = hours_of[queue_id]
        for kind, target_s, start in clocks:
            try:
                due_at = add_business_seconds(hours, start, target_s)
            except NeverOpenError:
                continue
            if due_at > now:
                continue
            event_id = insert_breach(
                conn,
                tenant_id=tenant_id,
                policy_id=row["policy_id"],
                ticket_id=row["ticket_id"],
                kind=kind,
                due_at=due_at,
                clock_start=start,
                now=now,
            )
            if event_id is None:
                continue
            breach = Breach(
                sla_event_id=event_id,
                ticket_id=row["ticket_id"],
                policy_id=row["policy_id"],
                kind=kind,
                due_at=due_at,
            )
            breaches.append(breach)
            outbox_ids.append(_announce(conn, tenant_id=tenant_id, breach=breach, now=now))
            outbox_ids += _escalate(conn, tenant_id=tenant_id, row=row, breach=breach)
    if breaches:
        log.info("sla breaches recorded", extra={"tenant_id": tenant_id, "count": len(breaches)})
    return SlaCheck(breaches=tuple(breaches), outbox_ids=tuple(outbox_ids))


def _announce(conn: Connection, *, tenant_id: int, breach: Breach, now: datetime) -> int:
    payload: dict[str, object] = {**breach.model_dump(mode="json"), "breached_at": now}
    return insert_outbox(conn, tenant_id=tenant_id, topic=SLA_BREACHED, payload=payload)


def _escalate(conn: Connection, *, tenant_id: int, row: RowMapping, breach: Breach) -> list[int]:
    """Reassign to the policy's user, or move to its queue and distribute there."""
    to_user, to_queue = row["escalate_to_user_id"], row["escalate_to_queue_id"]
    if to_user is None and to_queue is None:
        return []
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=breach.ticket_id)
    if ticket.status == "closed" or (to_user is not None and ticket.user_id == to_user):
        return []
    if to_user is not None:
        updated = update_ticket(conn, _REASSIGN, t=tenant_id, id=ticket.id, user_id=to_user)
    elif ticket.queue_id != to_queue:
        updated = update_ticket(conn, _REQUEUE, t=tenant_id, id=ticket.id, queue_id=to_queue)
    else:
        return []
    data: dict[str, object] = {
        "sla_event_id": breach.sla_event_id,
        "kind": breach.kind,
        "from_queue_id": ticket.queue_id,
        "from_user_id": ticket.user_id,
    }
    changed = record_ticket_change(
        conn, tenant_id=tenant_id, ticket=updated, action="sla_escalated", user_id=None, data=data
    )
    ids = list(changed.outbox_ids)
    if to_user is None:
        assigned = distribute(conn, tenant_id=tenant_id, ticket_id=ticket.id)
        ids += [] if assigned is None else [assigned.outbox_id]
    return ids
