"""API clients: tokens a tenant's own systems call the API with, each scoped to its grants."""

from __future__ import annotations

import base64
import logging
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from starlette.responses import Response

from api.auth_support import no_store
from api.framework import MAX_BIGINT, ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import ClientPermission, Permission
from engine.queries.api_clients import ApiClientView, get_api_client, list_api_clients
from engine.security import CLIENT_TOKEN_SHOWN_CHARS, new_client_token, token_digest
from engine.store import api_clients as store

log = logging.getLogger(__name__)

router = ApiRouter("api-clients")

_CURSOR_PREFIX = "ac:"
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class ClientCreate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_PRINTABLE),
    ]
    permissions: list[ClientPermission] = Field(min_length=1, max_length=len(ClientPermission))


class ClientCreated(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    client: ApiClientView
    # Shown in this answer only; the server keeps just a digest. Send as `Bearer <token>`.
    token: str


class ClientListQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["active", "revoked"] | None = None
    q: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=True, min_length=1, max_length=100, pattern=_PRINTABLE
            ),
        ]
        | None
    ) = None
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=64)

    @field_validator("cursor")
    @classmethod
    def _decodable(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)
        return value


class ClientPage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[ApiClientView]
    next_cursor: str | None


def encode_cursor(client_id: int) -> str:
    raw = f"{_CURSOR_PREFIX}{client_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(value: str) -> int:
    """The id in a cursor made by encode_cursor; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor returned by this API") from None
    digits = raw.removeprefix(_CURSOR_PREFIX)
    if (
        not raw.startswith(_CURSOR_PREFIX)
        or not digits.isdigit()
        or not 1 <= int(digits) <= MAX_BIGINT
    ):
        raise ValueError("not a cursor returned by this API")
    return int(digits)


@router.post(
    "/api/v1/api-clients",
    Permission.INTEGRATIONS_MANAGE,
    body=ClientCreate,
    response=ClientCreated,
    status=201,
    summary="Create an API client; its token is shown once",
)
async def create_api_client(call: Call[ClientCreate, NoQuery]) -> Response:
    """The token (`fdk_…`) authenticates as this client, limited to `permissions`."""
    token = new_client_token()
    permissions = sorted({p.value for p in call.body.permissions})
    async with call.tx() as conn:
        client_id: int = await conn.run_sync(
            lambda c: store.insert_api_client(
                c,
                tenant_id=call.tenant_id,
                name=call.body.name,
                permissions=permissions,
                token_hash=token_digest(token),
                token_prefix=token[:CLIENT_TOKEN_SHOWN_CHARS],
                created_by=call.principal.user_id,
            )
        )
        client = await get_api_client(conn, call.tenant_id, client_id)
    assert client is not None
    log.info("api client created", extra={"tenant_id": call.tenant_id, "client_id": client_id})
    return no_store(ClientCreated(client=client, token=token), status=201)


@router.get(
    "/api/v1/api-clients",
    Permission.INTEGRATIONS_MANAGE,
    query=ClientListQuery,
    response=ClientPage,
    summary="List API clients, newest first",
)
async def list_clients(call: Call[NoBody, ClientListQuery]) -> ClientPage:
    """Filter by `status`, search names with `q`; follow `next_cursor` for the next page."""
    query = call.query
    before = None if query.cursor is None else decode_cursor(query.cursor)
    async with call.tx() as conn:
        rows = await list_api_clients(
            conn,
            call.tenant_id,
            status=query.status,
            search=query.q,
            limit=query.limit + 1,
            before_id=before,
        )
    more = len(rows) > query.limit
    items = rows[: query.limit]
    return ClientPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


@router.get(
    "/api/v1/api-clients/{id}",
    Permission.INTEGRATIONS_MANAGE,
    response=ApiClientView,
    summary="One API client",
)
async def get_client(call: Call[NoBody, NoQuery]) -> ApiClientView:
    async with call.tx() as conn:
        client = await get_api_client(conn, call.tenant_id, call.id())
    if client is None:
        raise not_found("API client")
    return client


@router.delete(
    "/api/v1/api-clients/{id}",
    Permission.INTEGRATIONS_MANAGE,
    status=204,
    summary="Revoke an API client; its token stops working at once",
)
async def revoke_client(call: Call[NoBody, NoQuery]) -> None:
    """Idempotent: revoking a revoked client changes nothing."""
    async with call.tx() as conn:
        found: bool = await conn.run_sync(
            lambda c: store.revoke_api_client(c, tenant_id=call.tenant_id, client_id=call.id())
        )
    if not found:
        raise not_found("API client")
    log.info("api client revoked", extra={"tenant_id": call.tenant_id, "client_id": call.id()})
