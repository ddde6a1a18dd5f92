"""Ticket actions an agent takes: accept, transfer, close (with a farewell) and reopen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection

from api.errors import ApiError, ErrorDetail, invalid_field
from api.framework import MAX_BIGINT, Call, NoBody, NoQuery, conflict, not_found
from api.rbac import Permission
from api.resources.common import Clean
from api.tickets.common import after_commit, router, visible_ticket
from engine.errors import NotFoundError
from engine.queries.tickets import TicketView, get_ticket
from engine.routing.lifecycle import get_farewell
from engine.store.ticket_actions import (
    ActionResult,
    TicketTransitionError,
    mark_ticket_accepted,
    mark_ticket_closed,
    mark_ticket_reopened,
    mark_ticket_transferred,
    queue_exists,
    user_exists,
)
from pipelines.outbound import SendRequest, record_send

MAX_FAREWELL_CHARS = 4096


class TransferIn(BaseModel):
    """Where the ticket goes; give a queue, an agent, or both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue_id: int | None = Field(default=None, ge=1, le=MAX_BIGINT)
    user_id: int | None = Field(default=None, ge=1, le=MAX_BIGINT)


class CloseIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    farewell_message: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_FAREWELL_CHARS),
            Clean,
        ]
        | None
    ) = Field(default=None, description="Sent to the contact as the ticket closes.")


class _Acted(BaseModel):
    """What an action did inside its transaction: events to publish and sends to enqueue."""

    model_config = ConfigDict(frozen=True)

    outbox_ids: tuple[int, ...]
    sends: tuple[int, ...] = ()


async def _act(call: Call[Any, Any], action: Callable[[Connection], _Acted]) -> TicketView:
    """Run `action` on a ticket the caller can see; the ticket as it is afterwards.

    404 when it is not visible, 409 when the action does not fit the ticket's status.
    """
    ticket_id = call.id()
    async with call.tx() as conn:
        await visible_ticket(call, conn, ticket_id)
        try:
            acted = await conn.run_sync(action)
        except TicketTransitionError as exc:
            raise conflict(str(exc)) from None
        except NotFoundError:
            raise not_found("Ticket") from None
        ticket = await get_ticket(conn, call.tenant_id, ticket_id)
    await after_commit(sends=acted.sends, outbox_ids=acted.outbox_ids)
    assert ticket is not None
    return ticket


def _acted(result: ActionResult) -> _Acted:
    return _Acted(outbox_ids=result.outbox_ids)


@router.post(
    "/api/v1/tickets/{id}/accept",
    Permission.TICKETS_ACT,
    response=TicketView,
    summary="Accept a pending ticket",
)
async def accept_ticket(call: Call[NoBody, NoQuery]) -> TicketView:
    """pending → open, assigned to the caller. 409 for a ticket that is not pending.

    Sets accepted_at; the first-response clock keeps running until the first reply.
    """
    return await _act(
        call,
        lambda conn: _acted(
            mark_ticket_accepted(
                conn, tenant_id=call.tenant_id, ticket_id=call.id(), user_id=call.principal.user_id
            )
        ),
    )


@router.post(
    "/api/v1/tickets/{id}/transfer",
    Permission.TICKETS_ACT,
    body=TransferIn,
    response=TicketView,
    summary="Transfer a ticket to a queue or an agent",
)
async def transfer_ticket(call: Call[TransferIn, NoQuery]) -> TicketView:
    """Hand a live ticket to a queue and/or an agent of the tenant.

    To an agent: assigned to them and open. To a queue alone: unassigned and pending, for the
    queue's agents to accept. 422 when neither is given or a target does not exist; 409 for
    a closed ticket.
    """
    body = call.body
    if body.queue_id is None and body.user_id is None:
        message = "give queue_id, user_id or both"
        raise ApiError(
            422,
            "invalid_request",
            "Invalid request body: queue_id, user_id.",
            details=(
                ErrorDetail(field="queue_id", message=message),
                ErrorDetail(field="user_id", message=message),
            ),
        )

    def transfer(conn: Connection) -> _Acted:
        tenant_id = call.tenant_id
        if body.queue_id is not None and not queue_exists(
            conn, tenant_id=tenant_id, queue_id=body.queue_id
        ):
            raise invalid_field("queue_id", "no such queue")
        if body.user_id is not None and not user_exists(
            conn, tenant_id=tenant_id, user_id=body.user_id
        ):
            raise invalid_field("user_id", "no such user")
        return _acted(
            mark_ticket_transferred(
                conn,
                tenant_id=tenant_id,
                ticket_id=call.id(),
                user_id=call.principal.user_id,
                to_queue_id=body.queue_id,
                to_user_id=body.user_id,
            )
        )

    return await _act(call, transfer)


@router.post(
    "/api/v1/tickets/{id}/close",
    Permission.TICKETS_ACT,
    body=CloseIn,
    response=TicketView,
    summary="Close a ticket",
)
async def close_ticket(call: Call[CloseIn, NoQuery]) -> TicketView:
    """pending/open → closed. 409 for a ticket already closed.

    A `farewell_message` (else the tenant's `farewell_messages` setting for the channel) is
    recorded as an outgoing message (pending) in the same transaction and sent by a worker
    afterwards, like any reply. Closing frees the agent's capacity for waiting tickets.
    """
    farewell = call.body.farewell_message

    def close(conn: Connection) -> _Acted:
        tenant_id, user_id = call.tenant_id, call.principal.user_id
        closed = mark_ticket_closed(conn, tenant_id=tenant_id, ticket_id=call.id(), user_id=user_id)
        message = farewell or get_farewell(conn, tenant_id=tenant_id, ticket_id=call.id())
        if message is None:
            return _acted(closed)
        sent = record_send(
            conn,
            tenant_id=tenant_id,
            ticket_id=call.id(),
            request=SendRequest(body=message),
            user_id=user_id,
            event_data={"farewell": True},
        )
        return _Acted(outbox_ids=(*closed.outbox_ids, *sent.outbox_ids), sends=(sent.message_id,))

    return await _act(call, close)


@router.post(
    "/api/v1/tickets/{id}/reopen",
    Permission.TICKETS_ACT,
    response=TicketView,
    summary="Reopen a closed ticket",
)
async def reopen_ticket(call: Call[NoBody, NoQuery]) -> TicketView:
    """closed → open, assigned to the caller.

    409 naming the live ticket when the contact already has one on this channel (there is
    only ever one live ticket per contact and channel), or when the ticket is not closed.
    """
    return await _act(
        call,
        lambda conn: _acted(
            mark_ticket_reopened(
                conn, tenant_id=call.tenant_id, ticket_id=call.id(), user_id=call.principal.user_id
            )
        ),
    )
