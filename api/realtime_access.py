"""Who a WebSocket connection acts for, whether that still holds, and which events it may see."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import Principal
from api.deps import ApiDeps
from api.rbac import Permission, may
from engine.db import async_system_tx, async_tenant_tx
from engine.queries.api_clients import ClientCredential, get_client_by_token
from engine.queries.users import get_user_token_version
from engine.queries.visibility import ticket_of_message, ticket_visible_to
from engine.security import (
    InvalidTokenError,
    decode_access_token,
    is_client_token,
    token_digest,
)

log = logging.getLogger(__name__)

VISIBILITY_TTL_S = 5.0  # an assignment change reaches an open connection within this
MAX_CACHED = 4_096
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of checking a token; `principal` is None when it was rejected.

    `forbidden` marks a valid API client token without a ticket-read grant.
    """

    principal: Principal | None
    token_version: int = 0
    expires_at: datetime = _NEVER
    client_digest: str | None = None
    forbidden: bool = False

    async def still_valid(self, deps: ApiDeps) -> bool:
        """Not expired and not revoked (user: token_version unchanged; client: still live)."""
        if self.principal is None:
            return False
        if self.client_digest is not None:
            client = await _client(deps, self.client_digest)
            return client is not None and client.id == self.principal.client_id
        if datetime.now(UTC) >= self.expires_at:
            return False
        return await _current_version(deps, self.principal) == self.token_version


async def check_token(deps: ApiDeps, token: str) -> TokenCheck:
    """The checks of api.auth.require_principal: a user's JWT (signature, expiry, revocation)
    or a live API client's token, which must hold a ticket-read grant to follow events."""
    if is_client_token(token):
        return await _check_client(deps, token_digest(token))
    try:
        claims = decode_access_token(token, secret=deps.settings.JWT_SECRET)
    except InvalidTokenError as exc:
        log.info("websocket token rejected", extra={"reason": str(exc)})
        return TokenCheck(principal=None)
    principal = Principal(user_id=claims.user_id, tenant_id=claims.tenant_id, role=claims.role)
    if await _current_version(deps, principal) != claims.token_version:
        log.info("websocket token revoked", extra={"user_id": claims.user_id})
        return TokenCheck(principal=None)
    return TokenCheck(principal, claims.token_version, claims.exp)


async def _check_client(deps: ApiDeps, digest: str) -> TokenCheck:
    client = await _client(deps, digest)
    if client is None:
        log.info("websocket client token rejected")
        return TokenCheck(principal=None)
    principal = Principal(
        user_id=client.acting_user_id,
        tenant_id=client.tenant_id,
        role="agent",  # a placeholder: what a client may see is decided by its grants
        client_id=client.id,
        client_permissions=client.permissions,
    )
    readable = may(principal, Permission.TICKETS_READ) or may(
        principal, Permission.TICKETS_READ_ALL
    )
    return TokenCheck(principal, client_digest=digest, forbidden=not readable)


async def _client(deps: ApiDeps, digest: str) -> ClientCredential | None:
    async with async_system_tx(deps.db) as conn:
        return await get_client_by_token(conn, digest)


async def _current_version(deps: ApiDeps, principal: Principal) -> int | None:
    async with async_tenant_tx(deps.db, principal.tenant_id) as conn:
        return await get_user_token_version(conn, principal.tenant_id, principal.user_id)


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class Visibility:
    """The REST ticket list's rules applied to events, with answers cached for a few seconds.

    Supervisors and up see every event of their tenant. Agents see ticket.*, message.* and
    sla.* events of tickets visible to them (engine.queries.visibility, the ticket list's
    rule: their queues, their tickets, their wallet, the unqueued and bot-handled ones as the
    tenant's settings say), the transfer of a ticket away from them, and contact.* events (they
    may read any contact); other topics (campaign progress…) are for supervisors and up.
    An API client goes by its grants: tickets.read_all is everything, tickets.read the
    scope of the admin acting for it, contact.* needs contacts.read.
    """

    def __init__(self, db: AsyncEngine, principal: Principal) -> None:
        self.db = db
        self.principal = principal
        self.sees_all = may(principal, Permission.TICKETS_READ_ALL)
        self.reads_contacts = may(principal, Permission.CONTACTS_READ)
        self._tickets: dict[int, tuple[bool, float]] = {}
        self._message_tickets: dict[int, int | None] = {}

    async def allows(self, topic: str, data: Any) -> bool:
        if self.sees_all:
            return True
        if topic.startswith("contact."):
            return self.reads_contacts
        if not topic.startswith(("ticket.", "message.", "sla.")) or not isinstance(data, dict):
            return False
        if topic == "ticket.updated" and data.get("from_user_id") == self.principal.user_id:
            return True  # the agent a ticket was just transferred away from hears of it
        ticket_id = _positive_int(data.get("ticket_id"))
        if ticket_id is None:
            message_id = _positive_int(data.get("message_id"))
            ticket_id = None if message_id is None else await self._ticket_of(message_id)
        return ticket_id is not None and await self._visible(ticket_id)

    async def _visible(self, ticket_id: int) -> bool:
        now = time.monotonic()
        cached = self._tickets.get(ticket_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        async with async_tenant_tx(self.db, self.principal.tenant_id) as conn:
            visible = await ticket_visible_to(conn, self.principal, ticket_id)
        if len(self._tickets) >= MAX_CACHED:
            self._tickets.clear()
        self._tickets[ticket_id] = (visible, now + VISIBILITY_TTL_S)
        return visible

    async def _ticket_of(self, message_id: int) -> int | None:
        """A message never changes ticket, so this is cached for the connection's life."""
        if message_id not in self._message_tickets:
            async with async_tenant_tx(self.db, self.principal.tenant_id) as conn:
                ticket_id = await ticket_of_message(conn, self.principal.tenant_id, message_id)
            if len(self._message_tickets) >= MAX_CACHED:
                self._message_tickets.clear()
            self._message_tickets[message_id] = ticket_id
        return self._message_tickets[message_id]
