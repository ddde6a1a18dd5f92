"""What the ticket endpoints share: the router, the caller's view of tickets, after-commit work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.deliver import publish_outbox
from actors.outbound import send_message
from api.framework import ApiRouter, Call, not_found
from api.rbac import Permission, may
from engine.queries.tickets import TicketView, TicketViewer, get_ticket, get_ticket_viewer
from engine.routing.distribution import Assignment

router = ApiRouter("tickets")


async def viewer_of(call: Call[Any, Any], conn: AsyncConnection) -> TicketViewer:
    """Whose scope ticket reads are narrowed to: the caller's (agents) or the whole tenant."""
    principal = call.principal
    return await get_ticket_viewer(
        conn,
        principal.tenant_id,
        principal.user_id,
        sees_all=may(principal, Permission.TICKETS_READ_ALL),
    )


async def visible_ticket(
    call: Call[Any, Any],
    conn: AsyncConnection,
    ticket_id: int,
    *,
    subject: str = "Ticket",
) -> TicketView:
    """The ticket if the caller may see it; 404 otherwise (another tenant's, or out of scope)."""
    viewer = await viewer_of(call, conn)
    ticket = await get_ticket(conn, call.tenant_id, ticket_id, viewer=viewer)
    if ticket is None:
        raise not_found(subject)
    return ticket


async def after_commit(*, sends: Sequence[int] = (), outbox_ids: Sequence[int] = ()) -> None:
    """Enqueue sends and publish outbox events once their rows are committed.

    A lost enqueue leaves a pending message or an unpublished event for the sweeper.
    """
    for message_id in sends:
        await asyncio.to_thread(send_message.send, message_id)
    if outbox_ids:
        await asyncio.to_thread(publish_outbox.send, list(outbox_ids))


async def distribute_now(
    call: Call[Any, Any], work: Callable[[Connection], list[Assignment]]
) -> None:
    """Hand waiting tickets out after a change that gave agents capacity, in a transaction of
    its own (the change is committed first), and announce the assignments."""
    async with call.tx() as conn:
        done = await conn.run_sync(work)
    await after_commit(outbox_ids=[a.outbox_id for a in done])
