"""The agent inbox: ticket list with filters and search, one ticket, and marking it read."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from api.errors import ApiError, ErrorDetail
from api.framework import MAX_BIGINT, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import Clean
from api.tickets.common import after_commit, router, viewer_of, visible_ticket
from engine.errors import NotFoundError
from engine.queries.tickets import (
    TICKET_STATUSES,
    TicketCursor,
    TicketFilters,
    TicketPage,
    TicketStatus,
    TicketView,
    get_ticket,
    list_tickets,
)
from engine.store.ticket_actions import mark_ticket_read

MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_SEARCH_CHARS = 100


def _decode_cursor(value: object) -> object:
    return TicketCursor.decode(value) if isinstance(value, str) else value


def _split_statuses(value: object) -> object:
    """`open,pending` → ("open", "pending"); the whole parameter is named in any error."""
    if not isinstance(value, str):
        return value
    parts = [part.strip() for part in value.split(",")]
    if not all(part in TICKET_STATUSES for part in parts):
        raise ValueError(f"give one or more of {', '.join(TICKET_STATUSES)}, comma-separated")
    return tuple(dict.fromkeys(parts))


_Id = Annotated[int, Field(ge=1, le=MAX_BIGINT)]
_Statuses = Annotated[
    tuple[TicketStatus, ...] | None,
    BeforeValidator(_split_statuses),
    WithJsonSchema(
        {
            "type": "string",
            "description": "One or more of pending, open, closed, comma-separated.",
            "examples": ["pending,open"],
        }
    ),
]
_Cursor = Annotated[
    TicketCursor | None,
    BeforeValidator(_decode_cursor),
    WithJsonSchema({"type": "string", "description": "next_cursor of the previous page."}),
]
_Search = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SEARCH_CHARS),
    Clean,
]


class TicketListQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: _Statuses = None
    queue_id: _Id | None = None
    user_id: _Id | None = None
    unassigned: bool = Field(default=False, description="Only tickets nobody is assigned to.")
    channel_id: _Id | None = None
    tag_id: _Id | None = Field(default=None, description="Tickets of contacts with this tag.")
    unread_only: bool = False
    search: _Search | None = Field(
        default=None,
        description="Contact name (contains), phone digits (contains) or protocol (prefix).",
    )
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: _Cursor = None

    def filters(self) -> TicketFilters:
        return TicketFilters(
            statuses=self.status or (),
            queue_id=self.queue_id,
            user_id=self.user_id,
            unassigned=self.unassigned,
            channel_id=self.channel_id,
            tag_id=self.tag_id,
            unread_only=self.unread_only,
            search=self.search,
        )


@router.get(
    "/api/v1/tickets",
    Permission.TICKETS_READ,
    query=TicketListQuery,
    response=TicketPage,
    summary="List tickets",
)
async def list_tickets_endpoint(call: Call[NoBody, TicketListQuery]) -> TicketPage:
    """The tickets the caller may see, most recent activity first, one page at a time.

    Agents see tickets of their queues, tickets assigned to them and tickets of contacts in
    their wallet, plus pending tickets without a queue unless the tenant's
    `agents_see_unqueued` setting is false. Supervisors and admins see every ticket.
    """
    query = call.query
    if query.unassigned and query.user_id is not None:
        detail = ErrorDetail(field="unassigned", message="cannot be combined with user_id")
        raise ApiError(
            422, "invalid_request", "Invalid query parameter: unassigned.", details=(detail,)
        )
    async with call.tx() as conn:
        viewer = await viewer_of(call, conn)
        return await list_tickets(
            conn,
            call.tenant_id,
            limit=query.limit,
            before=query.cursor,
            filters=query.filters(),
            viewer=viewer,
        )


@router.get(
    "/api/v1/tickets/{id}",
    Permission.TICKETS_READ,
    response=TicketView,
    summary="Get a ticket",
)
async def get_ticket_endpoint(call: Call[NoBody, NoQuery]) -> TicketView:
    """One ticket the caller may see; 404 for another tenant's or one outside an agent's scope."""
    async with call.tx() as conn:
        return await visible_ticket(call, conn, call.id())


@router.post(
    "/api/v1/tickets/{id}/read",
    Permission.TICKETS_ACT,
    response=TicketView,
    summary="Mark a ticket read",
)
async def mark_ticket_read_endpoint(call: Call[NoBody, NoQuery]) -> TicketView:
    """Set the ticket's unread count to 0. A UI calls this whenever an agent opens a ticket.

    Writes a `read` ticket event and publishes `ticket.updated`; a ticket with nothing unread
    is left unchanged, so calling it on every open is cheap and quiet.
    """
    ticket_id = call.id()
    async with call.tx() as conn:
        await visible_ticket(call, conn, ticket_id)
        try:
            result = await conn.run_sync(
                lambda sync: mark_ticket_read(
                    sync,
                    tenant_id=call.tenant_id,
                    ticket_id=ticket_id,
                    user_id=call.principal.user_id,
                )
            )
        except NotFoundError:
            raise not_found("Ticket") from None
        ticket = await get_ticket(conn, call.tenant_id, ticket_id)
    await after_commit(outbox_ids=result.outbox_ids)
    assert ticket is not None
    return ticket
