"""Read endpoints of the ticket screen: ticket list and detail, messages, contact card."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth import require_principal
from api.deps import get_deps
from api.errors import ApiError, ErrorDetail, invalid_request
from engine.db import async_tenant_tx
from engine.queries.tickets import (
    MAX_BIGINT,
    TicketCursor,
    TicketStatus,
    get_contact,
    get_ticket,
    list_messages,
    list_tickets,
)

MAX_PAGE = 100
DEFAULT_PAGE = 50


def _decode_cursor(value: object) -> object:
    return TicketCursor.decode(value) if isinstance(value, str) else value


class TicketListQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: TicketStatus | None = None
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: Annotated[TicketCursor | None, BeforeValidator(_decode_cursor)] = None


class MessageListQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    after_id: int | None = Field(default=None, ge=0, le=MAX_BIGINT)


_Query = TypeVar("_Query", bound=BaseModel)


async def get_tickets(request: Request) -> Response:
    """GET /api/v1/tickets?status=&limit=&cursor= — the tenant's tickets, newest activity first."""
    principal = await require_principal(request)
    query = _parse_query(TicketListQuery, request)
    async with async_tenant_tx(get_deps(request).db, principal.tenant_id) as conn:
        page = await list_tickets(
            conn, principal.tenant_id, status=query.status, limit=query.limit, before=query.cursor
        )
    return json_response(page)


async def get_ticket_detail(request: Request) -> Response:
    """GET /api/v1/tickets/{id} — one ticket of the caller's tenant."""
    principal = await require_principal(request)
    ticket_id = path_id(request, "Ticket")
    async with async_tenant_tx(get_deps(request).db, principal.tenant_id) as conn:
        ticket = await get_ticket(conn, principal.tenant_id, ticket_id)
    if ticket is None:
        raise not_found("Ticket")
    return json_response(ticket)


async def get_ticket_messages(request: Request) -> Response:
    """GET /api/v1/tickets/{id}/messages?limit=&after_id= — a ticket's messages, oldest first."""
    principal = await require_principal(request)
    ticket_id = path_id(request, "Ticket")
    query = _parse_query(MessageListQuery, request)
    async with async_tenant_tx(get_deps(request).db, principal.tenant_id) as conn:
        if await get_ticket(conn, principal.tenant_id, ticket_id) is None:
            raise not_found("Ticket")
        page = await list_messages(
            conn, principal.tenant_id, ticket_id, limit=query.limit, after_id=query.after_id
        )
    return json_response(page)


async def get_contact_detail(request: Request) -> Response:
    """GET /api/v1/contacts/{id} — one contact of the caller's tenant with its identities."""
    principal = await require_principal(request)
    contact_id = path_id(request, "Contact")
    async with async_tenant_tx(get_deps(request).db, principal.tenant_id) as conn:
        contact = await get_contact(conn, principal.tenant_id, contact_id)
    if contact is None:
        raise not_found("Contact")
    return json_response(contact)


def _parse_query(model: type[_Query], request: Request) -> _Query:
    """Validate the query string against `model`; 422 naming each bad or repeated parameter."""
    values: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in values:
            detail = ErrorDetail(field=name, message="given more than once")
            raise ApiError(
                422, "invalid_request", f"Invalid query parameter: {name}.", details=(detail,)
            )
        values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid_request(exc, where="query parameter") from None


def path_id(request: Request, subject: str) -> int:
    value: int = request.path_params["id"]
    if not 1 <= value <= MAX_BIGINT:  # no such row can exist; spare PostgreSQL the overflow
        raise not_found(subject)
    return value


def not_found(subject: str) -> ApiError:
    return ApiError(404, "not_found", f"{subject} not found.")


def json_response(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


routes: list[Route] = [
    Route("/api/v1/tickets", get_tickets, methods=["GET"], name="tickets"),
    Route("/api/v1/tickets/{id:int}", get_ticket_detail, methods=["GET"], name="ticket"),
    Route(
        "/api/v1/tickets/{id:int}/messages",
        get_ticket_messages,
        methods=["GET"],
        name="ticket_messages",
    ),
    Route("/api/v1/contacts/{id:int}", get_contact_detail, methods=["GET"], name="contact"),
]
