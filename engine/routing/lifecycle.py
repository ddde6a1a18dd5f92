"""Ticket lifecycle rules the engine applies by itself: closing inactive tickets, farewells."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from engine.store.settings import get_setting
from engine.store.ticket_actions import ActionResult, mark_ticket_closed

AUTO_CLOSED = "auto_closed"

_TENANTS_WITH_AUTO_CLOSE = text(
    "SELECT tenant_id FROM settings "
    "WHERE key = 'auto_close_after_h' AND value <> 'null'::jsonb ORDER BY tenant_id"
)
# Inactive: no message either way (or, for a ticket without any, no creation) since `before`.
_INACTIVE = text(
    """
    SELECT id FROM tickets
    WHERE tenant_id = :t AND status IN ('pending', 'open')
      AND coalesce(last_message_at, created_at) < :before
    ORDER BY coalesce(last_message_at, created_at), id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_CHANNEL = text("SELECT channel_id FROM tickets WHERE tenant_id = :t AND id = :id")


def get_auto_close_tenants(conn: Connection) -> list[int]:
    """Tenants with an `auto_close_after_h` stored (system scope)."""
    return [int(r[0]) for r in conn.execute(_TENANTS_WITH_AUTO_CLOSE)]


def get_inactive_ticket_ids(
    conn: Connection, *, tenant_id: int, now: datetime, limit: int = 500
) -> list[int]:
    """Live tickets idle for the tenant's `auto_close_after_h`, idlest first; [] when unset.

    The rows stay locked for the transaction, so two sweeps never close one ticket twice.
    """
    after_h: int | None = get_setting(conn, tenant_id=tenant_id, key="auto_close_after_h")
    if after_h is None:
        return []
    before = now - timedelta(hours=after_h)
    params = {"t": tenant_id, "before": before, "limit": limit}
    return [int(r[0]) for r in conn.execute(_INACTIVE, params)]


def auto_close_ticket(conn: Connection, *, tenant_id: int, ticket_id: int) -> ActionResult:
    """Close an inactive ticket as the engine: an `auto_closed` event, `ticket.updated`."""
    return mark_ticket_closed(
        conn, tenant_id=tenant_id, ticket_id=ticket_id, user_id=None, action=AUTO_CLOSED, data={}
    )


def get_farewell(conn: Connection, *, tenant_id: int, ticket_id: int) -> str | None:
    """The tenant's farewell for the ticket's channel (else their "default" one), or None."""
    messages: dict[str, str] = get_setting(conn, tenant_id=tenant_id, key="farewell_messages")
    if not messages:
        return None
    channel_id = conn.execute(_CHANNEL, {"t": tenant_id, "id": ticket_id}).scalar_one_or_none()
    return messages.get(str(channel_id)) or messages.get("default")
