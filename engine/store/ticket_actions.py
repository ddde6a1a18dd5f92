"""Agent actions on a ticket (accept, transfer, close, reopen, read), each audited and announced.

Every action locks the ticket row, checks the transition against its current status, writes a
`ticket_events` row naming the user, and an outbox `ticket.updated` event for after commit.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from engine.errors import EngineError
from engine.routing.distribution import distribute, distribute_freed
from engine.store.ticket_log import (
    TICKET_UPDATED,
    ActionResult,
    LockedTicket,
    lock_ticket,
    record_ticket_change,
    update_ticket,
)

__all__ = [
    "TICKET_UPDATED",
    "ActionResult",
    "LiveTicketExistsError",
    "LockedTicket",
    "TicketTransitionError",
    "lock_ticket",
]


class TicketTransitionError(EngineError):
    """The action does not apply to the ticket in its current status (the API answers 409)."""


class LiveTicketExistsError(TicketTransitionError):
    """Reopening would make a second live ticket for the same contact and channel."""

    def __init__(self, message: str, *, live_ticket_id: int) -> None:
        super().__init__(message)
        self.live_ticket_id = live_ticket_id


_OTHER_LIVE = text(
    """
    SELECT id FROM tickets
    WHERE tenant_id = :t AND channel_id = :channel_id AND contact_id = :contact_id
      AND status IN ('pending', 'open') AND id <> :id
    ORDER BY id LIMIT 1
    """
)

_ACCEPT = text(
    """
    UPDATE tickets SET status = 'open', user_id = :user_id, accepted_at = now(),
        updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)
_TRANSFER = text(
    """
    UPDATE tickets SET status = :status, queue_id = :queue_id, user_id = :to_user_id,
        updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)
_CLOSE = text(
    """
    UPDATE tickets SET status = 'closed', closed_at = now(), updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)
_REOPEN = text(
    """
    UPDATE tickets SET status = 'open', user_id = :user_id, closed_at = NULL,
        updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)
_READ = text(
    """
    UPDATE tickets SET unread_count = 0, updated_at = now()
    WHERE tenant_id = :t AND id = :id
    RETURNING id, status, channel_id, contact_id, queue_id, user_id, unread_count
    """
)


def mark_ticket_accepted(
    conn: Connection, *, tenant_id: int, ticket_id: int, user_id: int
) -> ActionResult:
    """pending → open, assigned to `user_id`, accepted_at now; first_response_at untouched.

    Accepting a ticket the distribution gave someone else frees their capacity.
    Raises NotFoundError, TicketTransitionError.
    """
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.status != "pending":
        raise TicketTransitionError(
            f"Ticket {ticket_id} is {ticket.status}; only a pending ticket can be accepted."
        )
    updated = update_ticket(
        conn,
        _ACCEPT,
        t=tenant_id,
        id=ticket_id,
        user_id=user_id,
    )
    result = record_ticket_change(
        conn, tenant_id=tenant_id, ticket=updated, action="accepted", user_id=user_id
    )
    return _with_freed(conn, result, tenant_id=tenant_id, before=ticket, after=updated)


def mark_ticket_transferred(
    conn: Connection,
    *,
    tenant_id: int,
    ticket_id: int,
    user_id: int,
    to_queue_id: int | None,
    to_user_id: int | None,
) -> ActionResult:
    """Hand a live ticket to a queue and/or an agent.

    To an agent: assigned to them and `open`. To a queue alone: unassigned and back to
    `pending`, then distributed by the queue's policy (or left for its agents to accept). The
    previous agent's freed capacity goes to waiting tickets. The caller checks that the
    targets exist. The event names the previous queue and agent, so both sides hear of it.
    Raises NotFoundError, TicketTransitionError.
    """
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.status == "closed":
        raise TicketTransitionError(
            f"Ticket {ticket_id} is closed; reopen it before transferring it."
        )
    queue_id = ticket.queue_id if to_queue_id is None else to_queue_id
    status = "pending" if to_user_id is None else "open"
    updated = update_ticket(
        conn,
        _TRANSFER,
        t=tenant_id,
        id=ticket_id,
        status=status,
        queue_id=queue_id,
        to_user_id=to_user_id,
    )
    data: dict[str, object] = {"from_queue_id": ticket.queue_id, "from_user_id": ticket.user_id}
    result = record_ticket_change(
        conn, tenant_id=tenant_id, ticket=updated, action="transferred", user_id=user_id, data=data
    )
    if to_user_id is None:
        assigned = distribute(conn, tenant_id=tenant_id, ticket_id=ticket_id)
        if assigned is not None:
            result = _plus(result, [assigned.outbox_id])
    return _with_freed(conn, result, tenant_id=tenant_id, before=ticket, after=updated)


def mark_ticket_closed(
    conn: Connection,
    *,
    tenant_id: int,
    ticket_id: int,
    user_id: int | None,
    action: str = "closed",
    data: dict[str, object] | None = None,
) -> ActionResult:
    """pending/open → closed, closed_at now; the agent's freed capacity goes to waiting tickets.

    `user_id` None and `action` "auto_closed" when the engine closes it.
    Raises NotFoundError, TicketTransitionError.
    """
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.status == "closed":
        raise TicketTransitionError(f"Ticket {ticket_id} is already closed.")
    updated = update_ticket(conn, _CLOSE, t=tenant_id, id=ticket_id)
    result = record_ticket_change(
        conn, tenant_id=tenant_id, ticket=updated, action=action, user_id=user_id, data=data
    )
    return _with_freed(conn, result, tenant_id=tenant_id, before=ticket, after=updated)


def _plus(result: ActionResult, outbox_ids: list[int]) -> ActionResult:
    return ActionResult(ticket_id=result.ticket_id, outbox_ids=(*result.outbox_ids, *outbox_ids))


def _with_freed(
    conn: Connection,
    result: ActionResult,
    *,
    tenant_id: int,
    before: LockedTicket,
    after: LockedTicket,
) -> ActionResult:
    """Give waiting tickets to the agent who no longer carries this one."""
    still_carried = after.user_id == before.user_id and after.status != "closed"
    if before.user_id is None or still_carried:
        return result
    freed = distribute_freed(conn, tenant_id=tenant_id, user_id=before.user_id)
    return _plus(result, [a.outbox_id for a in freed])


def mark_ticket_reopened(
    conn: Connection, *, tenant_id: int, ticket_id: int, user_id: int
) -> ActionResult:
    """closed → open, assigned to `user_id`, closed_at cleared.

    Raises NotFoundError, TicketTransitionError, and LiveTicketExistsError when the contact
    already has a live ticket on this channel (one live ticket per contact and channel).
    """
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.status != "closed":
        raise TicketTransitionError(
            f"Ticket {ticket_id} is {ticket.status}; only a closed ticket can be reopened."
        )
    _raise_if_live(conn, tenant_id=tenant_id, ticket=ticket)
    try:
        # A savepoint, so losing the race to a new inbound ticket leaves the transaction usable.
        with conn.begin_nested():
            updated = update_ticket(
                conn,
                _REOPEN,
                t=tenant_id,
                id=ticket_id,
                user_id=user_id,
            )
    except IntegrityError:
        _raise_if_live(conn, tenant_id=tenant_id, ticket=ticket)
        raise
    return record_ticket_change(
        conn, tenant_id=tenant_id, ticket=updated, action="reopened", user_id=user_id
    )


def _raise_if_live(conn: Connection, *, tenant_id: int, ticket: LockedTicket) -> None:
    params = {
        "t": tenant_id,
        "channel_id": ticket.channel_id,
        "contact_id": ticket.contact_id,
        "id": ticket.id,
    }
    live = conn.execute(_OTHER_LIVE, params).scalar_one_or_none()
    if live is not None:
        raise LiveTicketExistsError(
            f"Ticket {live} is already live for this contact on this channel; "
            f"continue there instead of reopening ticket {ticket.id}.",
            live_ticket_id=int(live),
        )


def mark_ticket_read(
    conn: Connection, *, tenant_id: int, ticket_id: int, user_id: int
) -> ActionResult:
    """unread_count → 0. A ticket with nothing unread is left alone (no event, no outbox).

    Raises NotFoundError.
    """
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.unread_count == 0:
        return ActionResult(ticket_id=ticket_id, outbox_ids=())
    updated = update_ticket(conn, _READ, t=tenant_id, id=ticket_id)
    data: dict[str, object] = {"unread_count_was": ticket.unread_count}
    return record_ticket_change(
        conn, tenant_id=tenant_id, ticket=updated, action="read", user_id=user_id, data=data
    )


def queue_exists(conn: Connection, *, tenant_id: int, queue_id: int) -> bool:
    sql = text("SELECT EXISTS (SELECT 1 FROM queues WHERE tenant_id = :t AND id = :id)")
    return bool(conn.execute(sql, {"t": tenant_id, "id": queue_id}).scalar_one())


def user_exists(conn: Connection, *, tenant_id: int, user_id: int) -> bool:
    sql = text("SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = :t AND id = :id)")
    return bool(conn.execute(sql, {"t": tenant_id, "id": user_id}).scalar_one())
