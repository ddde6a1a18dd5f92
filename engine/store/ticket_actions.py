"""Agent actions on a ticket (accept, transfer, close, reopen, read), each audited and announced.

Every action locks the ticket row, checks the transition against its current status, writes a
`ticket_events` row naming the user, and an outbox `ticket.updated` event for after commit.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, TextClause, text
from sqlalchemy.exc import IntegrityError

from engine.errors import EngineError, NotFoundError
from engine.events import Frozen
from engine.store.outbox import insert_outbox

TICKET_UPDATED = "ticket.updated"


class TicketTransitionError(EngineError):
    """The action does not apply to the ticket in its current status (the API answers 409)."""


class LiveTicketExistsError(TicketTransitionError):
    """Reopening would make a second live ticket for the same contact and channel."""

    def __init__(self, message: str, *, live_ticket_id: int) -> None:
        super().__init__(message)
        self.live_ticket_id = live_ticket_id


class LockedTicket(Frozen):
    """A ticket row held FOR UPDATE for the rest of the transaction."""

    id: int
    status: str
    channel_id: int
    contact_id: int
    queue_id: int | None
    user_id: int | None
    unread_count: int


class ActionResult(Frozen):
    ticket_id: int
    outbox_ids: tuple[int, ...]


_LOCK = text(
    """
    SELECT id, status, channel_id, contact_id, queue_id, user_id, unread_count
    FROM tickets WHERE tenant_id = :t AND id = :id FOR UPDATE
    """
)
_EVENT = text(
    """
    INSERT INTO ticket_events (tenant_id, ticket_id, type, user_id, data)
    VALUES (:t, :id, :type, :user_id, CAST(:data AS jsonb))
    """
)
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


def lock_ticket(conn: Connection, *, tenant_id: int, ticket_id: int) -> LockedTicket:
    """Lock the tenant's ticket for this transaction. Raises NotFoundError."""
    row = conn.execute(_LOCK, {"t": tenant_id, "id": ticket_id}).mappings().one_or_none()
    if row is None:
        raise NotFoundError(f"no ticket {ticket_id}")
    return LockedTicket.model_validate(dict(row))


def _update(conn: Connection, statement: TextClause, **params: object) -> LockedTicket:
    row = conn.execute(statement, params).mappings().one()
    return LockedTicket.model_validate(dict(row))


def _announce(
    conn: Connection,
    *,
    tenant_id: int,
    ticket: LockedTicket,
    action: str,
    user_id: int,
    data: dict[str, object] | None = None,
) -> ActionResult:
    """The audit row and the `ticket.updated` outbox event for one action."""
    state: dict[str, object] = {
        "status": ticket.status,
        "queue_id": ticket.queue_id,
        "user_id": ticket.user_id,
    }
    conn.execute(
        _EVENT,
        {
            "t": tenant_id,
            "id": ticket.id,
            "type": action,
            "user_id": user_id,
            "data": json.dumps({**state, **(data or {})}),
        },
    )
    outbox_id = insert_outbox(
        conn,
        tenant_id=tenant_id,
        topic=TICKET_UPDATED,
        payload={"ticket_id": ticket.id, "action": action, **state},
    )
    return ActionResult(ticket_id=ticket.id, outbox_ids=(outbox_id,))


def mark_ticket_accepted(
    conn: Connection, *, tenant_id: int, ticket_id: int, user_id: int
) -> ActionResult:
    """pending → open, assigned to `user_id`, accepted_at now; first_response_at untouched.

    Raises NotFoundError, TicketTransitionError.
    """
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.status != "pending":
        raise TicketTransitionError(
            f"Ticket {ticket_id} is {ticket.status}; only a pending ticket can be accepted."
        )
    updated = _update(
        conn,
        _ACCEPT,
        t=tenant_id,
        id=ticket_id,
        user_id=user_id,
    )
    return _announce(conn, tenant_id=tenant_id, ticket=updated, action="accepted", user_id=user_id)


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
    `pending`, so the queue's agents can accept it. The caller checks that the targets exist.
    Raises NotFoundError, TicketTransitionError.
    """
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.status == "closed":
        raise TicketTransitionError(
            f"Ticket {ticket_id} is closed; reopen it before transferring it."
        )
    queue_id = ticket.queue_id if to_queue_id is None else to_queue_id
    status = "pending" if to_user_id is None else "open"
    updated = _update(
        conn,
        _TRANSFER,
        t=tenant_id,
        id=ticket_id,
        status=status,
        queue_id=queue_id,
        to_user_id=to_user_id,
    )
    data: dict[str, object] = {"from_queue_id": ticket.queue_id, "from_user_id": ticket.user_id}
    return _announce(
        conn, tenant_id=tenant_id, ticket=updated, action="transferred", user_id=user_id, data=data
    )


def mark_ticket_closed(
    conn: Connection, *, tenant_id: int, ticket_id: int, user_id: int
) -> ActionResult:
    """pending/open → closed, closed_at now. Raises NotFoundError, TicketTransitionError."""
    ticket = lock_ticket(conn, tenant_id=tenant_id, ticket_id=ticket_id)
    if ticket.status == "closed":
        raise TicketTransitionError(f"Ticket {ticket_id} is already closed.")
    updated = _update(conn, _CLOSE, t=tenant_id, id=ticket_id)
    return _announce(conn, tenant_id=tenant_id, ticket=updated, action="closed", user_id=user_id)


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
            updated = _update(
                conn,
                _REOPEN,
                t=tenant_id,
                id=ticket_id,
                user_id=user_id,
            )
    except IntegrityError:
        _raise_if_live(conn, tenant_id=tenant_id, ticket=ticket)
        raise
    return _announce(conn, tenant_id=tenant_id, ticket=updated, action="reopened", user_id=user_id)


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
    updated = _update(conn, _READ, t=tenant_id, id=ticket_id)
    data: dict[str, object] = {"unread_count_was": ticket.unread_count}
    return _announce(
        conn, tenant_id=tenant_id, ticket=updated, action="read", user_id=user_id, data=data
    )


def queue_exists(conn: Connection, *, tenant_id: int, queue_id: int) -> bool:
    sql = text("SELECT EXISTS (SELECT 1 FROM queues WHERE tenant_id = :t AND id = :id)")
    return bool(conn.execute(sql, {"t": tenant_id, "id": queue_id}).scalar_one())


def user_exists(conn: Connection, *, tenant_id: int, user_id: int) -> bool:
    sql = text("SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = :t AND id = :id)")
    return bool(conn.execute(sql, {"t": tenant_id, "id": user_id}).scalar_one())
