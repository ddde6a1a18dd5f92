"""Which tickets a user may see: supervisors and up all of them, agents only their scope.

The rule itself lives in engine.queries.tickets (TicketViewer), shared with the ticket list.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.tickets.listing import get_ticket_viewer, ticket_in_view
from engine.security import Role

SEES_ALL: frozenset[Role] = frozenset({"super", "admin", "supervisor"})


class Viewer(Protocol):
    """Who is looking (api.auth.Principal fits)."""

    @property
    def user_id(self) -> int: ...

    @property
    def tenant_id(self) -> int: ...

    @property
    def role(self) -> Role: ...


_MESSAGE_TICKET = text("SELECT ticket_id FROM messages WHERE tenant_id = :t AND id = :message_id")


async def ticket_visible_to(conn: AsyncConnection, viewer: Viewer, ticket_id: int) -> bool:
    """Whether `viewer` may see ticket `ticket_id` of their tenant. Read-only.

    False for a ticket of another tenant or one that does not exist.
    """
    scope = await get_ticket_viewer(
        conn, viewer.tenant_id, viewer.user_id, sees_all=viewer.role in SEES_ALL
    )
    return await ticket_in_view(conn, viewer.tenant_id, ticket_id, scope)


async def ticket_of_message(conn: AsyncConnection, tenant_id: int, message_id: int) -> int | None:
    """The ticket a message of the tenant belongs to, or None. Read-only."""
    params = {"t": tenant_id, "message_id": message_id}
    value = (await conn.execute(_MESSAGE_TICKET, params)).scalar_one_or_none()
    return None if value is None else int(value)
