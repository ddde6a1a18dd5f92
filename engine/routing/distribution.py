"""Ticket distribution: give a queue's pending ticket to one of its online agents with capacity.

Policies per queue: `none` (the ticket stays pending for anyone in the queue), `round_robin`
(the member assigned longest ago in this queue goes next) and `least_loaded` (fewest live
tickets, then longest ago). Load is a user's live (pending or open) tickets assigned to them;
`users.max_open_tickets` caps it (NULL: no cap). The candidates' user rows are locked FOR UPDATE
in id order before their load is counted, so concurrent assignments never exceed a capacity.
An auto-assigned ticket stays `pending` with its agent set, until that agent accepts it.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from engine.events import Frozen
from engine.store.ticket_log import lock_ticket, record_ticket_change, update_ticket

log = logging.getLogger(__name__)

_POLICY = text("SELECT distribution FROM queues WHERE tenant_id = :t AND id = :q")
_MEMBERS = text(
    """
    SELECT u.id FROM users u
    JOIN user_queues uq ON uq.user_id = u.id AND uq.tenant_id = :t AND uq.queue_id = :q
    WHERE u.tenant_id = :t AND u.online
    ORDER BY u.id
    """
)
_LOCK_USERS = text(
    "SELECT id FROM users WHERE tenant_id = :t AND id = ANY(:ids) ORDER BY id FOR UPDATE"
)
# Read after the lock, so every assignment committed before it is counted.
_CHOOSE = text(
    """
    SELECT id FROM (
        SELECT u.id, u.max_open_tickets, uq.last_assigned_at,
               (SELECT count(*) FROM tickets t
                WHERE t.tenant_id = :t AND t.user_id = u.id
                  AND t.status IN ('pending', 'open')) AS load
        FROM users u
        JOIN user_queues uq ON uq.user_id = u.id AND uq.tenant_id = :t AND uq.queue_id = :q
        WHERE u.tenant_id = :t AND u.id = ANY(:ids) AND u.online
    ) c
    WHERE c.max_open_tickets IS NULL OR c.load < c.max_open_tickets
    ORDER BY CASE WHEN :least_loaded THEN c.load ELSE 0 END,
             c.last_assigned_at NULLS FIRST, c.id
    LIMIT 1
    """
)
_ASSIGN = text(
    """
    UPDATE tickets SET user_id = :user_id, updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)
_MARK_MEMBER = text(
    """
    UPDATE user_queues SET last_assigned_at = clock_timestamp()
    WHERE tenant_id = :t AND user_id = :user_id AND queue_id = :q
    """
)
_QUEUES_OF = text(
    """
    SELECT q.id FROM queues q
    JOIN user_queues uq ON uq.queue_id = q.id AND uq.tenant_id = :t AND uq.user_id = :user_id
    WHERE q.tenant_id = :t AND q.distribution <> 'none'
    ORDER BY q.id
    """
)
_WAITING_TENANTS = text(
    """
    SELECT DISTINCT t.tenant_id FROM tickets t
    JOIN queues q ON q.id = t.queue_id AND q.tenant_id = t.tenant_id
    WHERE t.status = 'pending' AND t.user_id IS NULL AND q.distribution <> 'none'
    ORDER BY t.tenant_id
    """
)
_WAITING = text(
    """
    SELECT t.id, t.queue_id FROM tickets t
    JOIN queues q ON q.id = t.queue_id AND q.tenant_id = :t
    WHERE t.tenant_id = :t AND t.status = 'pending' AND t.user_id IS NULL
      AND t.chat_flow_state IS NULL AND q.distribution <> 'none'
      AND (CAST(:q AS bigint) IS NULL OR t.queue_id = :q)
    ORDER BY t.queue_id, t.created_at, t.id
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
    """
)


class Assignment(Frozen):
    """A ticket given to an agent, with the outbox event announcing it."""

    ticket_id: int
    user_id: int
    outbox_id: int


def distribute(conn: Connection, *, tenant_id: int, ticket_id: int) -> Assignment | None:
    """Assign a pending, unassigned ticket by its queue's policy; None when nobody gets it.

    None leaves the ticket as it is: closed, already assigned, no queue, policy `none`, or no
    online member below capacity (distribute_waiting picks it up when capacity frees). Writes
    an `assigned` ticket event and a `ticket.updated` outbox event. Runs in the caller's tenant
    transaction; raises NotFoundError.
    """
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.status == "closed" or ticket.queue_id is None or ticket.user_id is not None:
        return None
    params = {"t": tenant_id, "q": ticket.queue_id}
    policy = conn.execute(_POLICY, params).scalar_one_or_none()
    if policy is None or policy == "none":
        return None
    members = [int(r[0]) for r in conn.execute(_MEMBERS, params)]
    if not members:
        return None
    conn.execute(_LOCK_USERS, {"t": tenant_id, "ids": members})
    least_loaded = policy == "least_loaded"
    found = conn.execute(_CHOOSE, {**params, "ids": members, "least_loaded": least_loaded})
    chosen = found.scalar_one_or_none()
    if chosen is None:
        log.info("no agent with capacity", extra={"ticket_id": ticket_id, "queue": ticket.queue_id})
        return None
    updated = update_ticket(conn, _ASSIGN, t=tenant_id, id=ticket_id, user_id=int(chosen))
    conn.execute(_MARK_MEMBER, {**params, "user_id": int(chosen)})
    result = record_ticket_change(
        conn,
        tenant_id=tenant_id,
        ticket=updated,
        action="assigned",
        user_id=None,
        data={"policy": str(policy)},
    )
    return Assignment(ticket_id=ticket_id, user_id=int(chosen), outbox_id=result.outbox_ids[0])


def get_waiting_tenants(conn: Connection) -> list[int]:
    """Tenants with tickets waiting in a distributing queue (system scope)."""
    return [int(r[0]) for r in conn.execute(_WAITING_TENANTS)]


def distribute_waiting(
    conn: Connection, *, tenant_id: int, queue_id: int | None = None
) -> list[Assignment]:
    """Assign pending unassigned tickets, oldest first per queue, while capacity lasts.

    Tickets a bot still handles and tickets other transactions hold are skipped.
    """
    done: list[Assignment] = []
    full_queues: set[int] = set()
    rows = conn.execute(_WAITING, {"t": tenant_id, "q": queue_id, "limit": 500}).all()
    for ticket_id, waiting_queue in rows:
        if waiting_queue in full_queues:
            continue
        assignment = distribute(conn, tenant_id=tenant_id, ticket_id=int(ticket_id))
        if assignment is None:
            full_queues.add(int(waiting_queue))
        else:
            done.append(assignment)
    return done


def distribute_freed(conn: Connection, *, tenant_id: int, user_id: int) -> list[Assignment]:
    """After `user_id` gained capacity (or came online): fill the queues they work in."""
    done: list[Assignment] = []
    for (queue_id,) in conn.execute(_QUEUES_OF, {"t": tenant_id, "user_id": user_id}).all():
        done += distribute_waiting(conn, tenant_id=tenant_id, queue_id=int(queue_id))
    return done
