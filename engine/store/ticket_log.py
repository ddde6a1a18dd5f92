"""A ticket row locked for a change; the audit row and `ticket.updated` event of each change."""

from __future__ import annotations

import json

from sqlalchemy import Connection, TextClause, text

from engine.errors import NotFoundError
from engine.events import Frozen
from engine.store.outbox import insert_outbox

TICKET_UPDATED = "ticket.updated"


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


def lock_ticket(conn: Connection, *, tenant_id: int, ticket_id: int) -> LockedTicket:
    """Lock the tenant's ticket for this transaction. Raises NotFoundError."""
    row = conn.execute(_LOCK, {"t": tenant_id, "id": ticket_id}).mappings().one_or_none()
    if row is None:
        raise NotFoundError(f"no ticket {ticket_id}")
    return LockedTicket.model_validate(dict(row))


def update_ticket(conn: Connection, statement: TextClause, **params: object) -> LockedTicket:
    """Run an UPDATE … RETURNING the LockedTicket columns; the changed row."""
    row = conn.execute(statement, params).mappings().one()
    return LockedTicket.model_validate(dict(row))


def record_ticket_change(
    conn: Connection,
    *,
    tenant_id: int,
    ticket: LockedTicket,
    action: str,
    user_id: int | None,
    data: dict[str, object] | None = None,
) -> ActionResult:
    """The audit row and the `ticket.updated` outbox event for one change.

    `user_id` None: the engine made the change (distribution, auto-close, SLA escalation).
    """
    state: dict[str, object] = {
        "status": ticket.status,
        "queue_id": ticket.queue_id,
        "user_id": ticket.user_id,
    }
    extra = data or {}
    conn.execute(
        _EVENT,
        {
            "t": tenant_id,
            "id": ticket.id,
            "type": action,
            "user_id": user_id,
            "data": json.dumps({**state, **extra}, default=str),
        },
    )
    outbox_id = insert_outbox(
        conn,
        tenant_id=tenant_id,
        topic=TICKET_UPDATED,
        payload={"ticket_id": ticket.id, "action": action, **state, **extra},
    )
    return ActionResult(ticket_id=ticket.id, outbox_ids=(outbox_id,))
