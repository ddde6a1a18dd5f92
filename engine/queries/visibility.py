"""Which tickets a user may see: supervisors and up all of them, agents only their scope."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

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


_EXISTS = text("SELECT EXISTS (SELECT 1 FROM tickets WHERE tenant_id = :t AND id = :ticket_id)")

# An agent sees a ticket of a queue they belong to, one assigned to them, one of a contact in
# their wallet, or a pending one no queue has claimed yet (someone must pick it up).
_AGENT_SEES = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM tickets t
        WHERE t.tenant_id = :t AND t.id = :ticket_id AND (
            t.user_id = :user_id
            OR (t.status = 'pending' AND t.queue_id IS NULL)
            OR EXISTS (SELECT 1 FROM user_queues uq
                       WHERE uq.tenant_id = :t AND uq.user_id = :user_id
                         AND uq.queue_id = t.queue_id)
            OR EXISTS (SELECT 1 FROM wallets w
                       WHERE w.tenant_id = :t AND w.user_id = :user_id
                         AND w.contact_id = t.contact_id)
        )
    )
    """
)

_MESSAGE_TICKET = text("SELECT ticket_id FROM messages WHERE tenant_id = :t AND id = :message_id")


async def ticket_visible_to(conn: AsyncConnection, viewer: Viewer, ticket_id: int) -> bool:
    """Whether `viewer` may see ticket `ticket_id` of their tenant. Read-only.

    False for a ticket of another tenant or one that does not exist.
    """
    params = {"t": viewer.tenant_id, "ticket_id": ticket_id, "user_id": viewer.user_id}
    query = _EXISTS if viewer.role in SEES_ALL else _AGENT_SEES
    return bool((await conn.execute(query, params)).scalar_one())


async def ticket_of_message(conn: AsyncConnection, tenant_id: int, message_id: int) -> int | None:
    """The ticket a message of the tenant belongs to, or None. Read-only."""
    params = {"t": tenant_id, "message_id": message_id}
    value = (await conn.execute(_MESSAGE_TICKET, params)).scalar_one_or_none()
    return None if value is None else int(value)
