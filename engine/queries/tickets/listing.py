"""Ticket list and detail, narrowed to what the viewer may see and to the filters asked for."""

from __future__ import annotations

import functools
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import RowMapping, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.settings import stored_settings
from engine.queries.tickets.views import (
    ChannelRef,
    ContactRef,
    TicketCursor,
    TicketPage,
    TicketStatus,
    TicketView,
)
from engine.settings_registry import REGISTRY, effective

AGENTS_SEE_UNQUEUED_KEY = "agents_see_unqueued"
AGENTS_SEE_UNQUEUED_DEFAULT: bool = REGISTRY[AGENTS_SEE_UNQUEUED_KEY].default
HIDE_BOT_TICKETS_KEY = "hide_bot_tickets_from_agents"
HIDE_BOT_TICKETS_DEFAULT: bool = REGISTRY[HIDE_BOT_TICKETS_KEY].default
# Fewer digits than this match almost every phone number, so they only search names.
MIN_PHONE_DIGITS = 3


class TicketViewer(BaseModel):
    """Whose eyes a ticket read is for.

    Agents (`sees_all` False) see tickets of their queues, tickets assigned to them and
    tickets of contacts in their wallet, plus, when `sees_unqueued`, pending tickets no queue
    has taken yet (the waiting room every agent may pick from). With `hides_bot_tickets`,
    none of those a chat-flow bot is still handling. This is the one rule for the ticket
    list, the ticket detail and realtime events.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    sees_all: bool
    sees_unqueued: bool = AGENTS_SEE_UNQUEUED_DEFAULT
    hides_bot_tickets: bool = HIDE_BOT_TICKETS_DEFAULT


class TicketFilters(BaseModel):
    """What the ticket list is narrowed to; every field is optional."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    statuses: tuple[TicketStatus, ...] = ()
    queue_id: int | None = None
    user_id: int | None = None
    unassigned: bool = False
    channel_id: int | None = None
    tag_id: int | None = None
    unread_only: bool = False
    search: str | None = None


# Channel and contact are filtered on tenant_id too, so a corrupt cross-tenant foreign key
# can never pull another tenant's name or phone into a ticket.
_TICKET_SELECT = """
    SELECT t.id, t.status, t.protocol, t.unread_count, t.answered, t.is_group,
           t.last_message_at, t.queue_id, t.user_id, t.accepted_at, t.closed_at, t.created_at,
           t.updated_at,
           ch.id AS channel_id, ch.type AS channel_type, ch.name AS channel_name,
           co.id AS contact_id, co.name AS contact_name, co.phone AS contact_phone
    FROM tickets t
    JOIN channels ch ON ch.id = t.channel_id AND ch.tenant_id = :tenant_id
    JOIN contacts co ON co.id = t.contact_id AND co.tenant_id = :tenant_id
    WHERE t.tenant_id = :tenant_id
"""
_VISIBLE = """
    AND (t.user_id = :viewer_id
         OR t.queue_id IN (SELECT uq.queue_id FROM user_queues uq
                           WHERE uq.tenant_id = :tenant_id AND uq.user_id = :viewer_id)
         OR EXISTS (SELECT 1 FROM wallets w
                    WHERE w.tenant_id = :tenant_id AND w.contact_id = t.contact_id
                      AND w.user_id = :viewer_id)
         OR (:sees_unqueued AND t.status = 'pending' AND t.queue_id IS NULL))
    AND NOT (:hides_bot_tickets AND t.chat_flow_state IS NOT NULL)
"""
_BY_STATUS = " AND t.status = ANY(:statuses)"
_BY_QUEUE = " AND t.queue_id = :queue_id"
_BY_USER = " AND t.user_id = :user_id"
_UNASSIGNED = " AND t.user_id IS NULL"
_BY_CHANNEL = " AND t.channel_id = :channel_id"
_BY_TAG = """
    AND EXISTS (SELECT 1 FROM contact_tags ct
                WHERE ct.tenant_id = :tenant_id AND ct.contact_id = t.contact_id
                  AND ct.tag_id = :tag_id)
"""
_UNREAD = " AND t.unread_count > 0"
_SEARCH = (
    " AND (co.name ILIKE :name_like ESCAPE '\\' OR t.protocol ILIKE :protocol_like ESCAPE '\\')"
)
_SEARCH_WITH_PHONE = (
    " AND (co.name ILIKE :name_like ESCAPE '\\' OR t.protocol ILIKE :protocol_like ESCAPE '\\'"
    " OR co.phone LIKE :phone_like)"
)
# Order is last_message_at DESC NULLS LAST, id DESC: after a dated ticket come older ones,
# its older-id twins, then every undated one; after an undated ticket only undated ones.
_AFTER_DATED = " AND ((t.last_message_at, t.id) < (:c_ts, :c_id) OR t.last_message_at IS NULL)"
_AFTER_UNDATED = " AND t.last_message_at IS NULL AND t.id < :c_id"
_TICKET_ORDER = " ORDER BY t.last_message_at DESC NULLS LAST, t.id DESC LIMIT :limit"

_TICKET_EXISTS = "SELECT EXISTS (SELECT 1 FROM tickets t WHERE t.tenant_id = :tenant_id"


@functools.cache
def _sql(fragments: tuple[str, ...]) -> TextClause:
    """The statement made of these constant fragments; values are always bound, never spliced."""
    return text("".join(fragments))


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_sql(filters: TicketFilters, params: dict[str, object]) -> list[str]:
    """The WHERE fragments for `filters`, adding their values to `params`."""
    parts: list[str] = []
    if filters.statuses:
        parts.append(_BY_STATUS)
        params["statuses"] = list(filters.statuses)
    if filters.queue_id is not None:
        parts.append(_BY_QUEUE)
        params["queue_id"] = filters.queue_id
    if filters.unassigned:
        parts.append(_UNASSIGNED)
    elif filters.user_id is not None:
        parts.append(_BY_USER)
        params["user_id"] = filters.user_id
    if filters.channel_id is not None:
        parts.append(_BY_CHANNEL)
        params["channel_id"] = filters.channel_id
    if filters.tag_id is not None:
        parts.append(_BY_TAG)
        params["tag_id"] = filters.tag_id
    if filters.unread_only:
        parts.append(_UNREAD)
    if filters.search:
        escaped = _like_escape(filters.search)
        params["name_like"] = f"%{escaped}%"
        params["protocol_like"] = f"{escaped}%"
        digits = re.sub(r"\D", "", filters.search)
        if len(digits) >= MIN_PHONE_DIGITS:
            parts.append(_SEARCH_WITH_PHONE)
            params["phone_like"] = f"%{digits}%"  # phones are stored E.164: '+' and digits
        else:
            parts.append(_SEARCH)
    return parts


def _visibility_sql(viewer: TicketViewer | None, params: dict[str, object]) -> list[str]:
    if viewer is None or viewer.sees_all:
        return []
    params["viewer_id"] = viewer.user_id
    params["sees_unqueued"] = viewer.sees_unqueued
    params["hides_bot_tickets"] = viewer.hides_bot_tickets
    return [_VISIBLE]


def _ticket_from_row(row: RowMapping) -> TicketView:
    return TicketView(
        id=row["id"],
        status=row["status"],
        protocol=row["protocol"],
        channel=ChannelRef(
            id=row["channel_id"], type=row["channel_type"], name=row["channel_name"]
        ),
        contact=ContactRef(
            id=row["contact_id"], name=row["contact_name"], phone=row["contact_phone"]
        ),
        unread_count=row["unread_count"],
        answered=row["answered"],
        is_group=row["is_group"],
        last_message_at=row["last_message_at"],
        queue_id=row["queue_id"],
        user_id=row["user_id"],
        accepted_at=row["accepted_at"],
        closed_at=row["closed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def get_ticket_viewer(
    conn: AsyncConnection, tenant_id: int, user_id: int, *, sees_all: bool
) -> TicketViewer:
    """The viewer for this user, reading the tenant's visibility settings. Read-only.

    Nothing stored, or a stored value that is not a boolean, means the registry's default.
    """
    if sees_all:
        return TicketViewer(user_id=user_id, sees_all=True)
    stored = await stored_settings(conn, tenant_id, [AGENTS_SEE_UNQUEUED_KEY, HIDE_BOT_TICKETS_KEY])
    sees_unqueued, hides_bot_tickets = (
        bool(effective(key, stored.get(key), present=key in stored))
        for key in (AGENTS_SEE_UNQUEUED_KEY, HIDE_BOT_TICKETS_KEY)
    )
    return TicketViewer(
        user_id=user_id,
        sees_all=False,
        sees_unqueued=sees_unqueued,
        hides_bot_tickets=hides_bot_tickets,
    )


async def ticket_in_view(
    conn: AsyncConnection, tenant_id: int, ticket_id: int, viewer: TicketViewer
) -> bool:
    """Whether the tenant's ticket exists and `viewer` may see it. Read-only."""
    params: dict[str, object] = {"tenant_id": tenant_id, "ticket_id": ticket_id}
    parts = (_TICKET_EXISTS, *_visibility_sql(viewer, params), " AND t.id = :ticket_id)")
    return bool((await conn.execute(_sql(parts), params)).scalar_one())


async def list_tickets(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    limit: int,
    before: TicketCursor | None,
    filters: TicketFilters | None = None,
    viewer: TicketViewer | None = None,
) -> TicketPage:
    """One page of the tenant's tickets, most recent activity first. Read-only.

    `viewer` None reads the whole tenant (internal use); an agent's viewer narrows to their
    scope. `before` is the previous page's cursor; `next_cursor` is None on the last page.
    """
    filters = filters or TicketFilters()
    params: dict[str, object] = {"tenant_id": tenant_id, "limit": limit + 1}
    parts = [_TICKET_SELECT, *_visibility_sql(viewer, params), *_filter_sql(filters, params)]
    after: Literal["dated", "undated"] | None = None
    if before is not None:
        after = "undated" if before.last_message_at is None else "dated"
        params["c_id"] = before.id
        if before.last_message_at is not None:
            params["c_ts"] = before.last_message_at
    if after == "dated":
        parts.append(_AFTER_DATED)
    elif after == "undated":
        parts.append(_AFTER_UNDATED)
    parts.append(_TICKET_ORDER)
    rows = (await conn.execute(_sql(tuple(parts)), params)).mappings().all()
    items = tuple(_ticket_from_row(row) for row in rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = TicketCursor(last_message_at=last.last_message_at, id=last.id).encode()
    return TicketPage(items=items, next_cursor=next_cursor)


async def get_ticket(
    conn: AsyncConnection, tenant_id: int, ticket_id: int, *, viewer: TicketViewer | None = None
) -> TicketView | None:
    """The tenant's ticket, or None when it does not exist here or `viewer` may not see it.

    `viewer` None reads regardless of agent scope (internal use). Read-only.
    """
    params: dict[str, object] = {"tenant_id": tenant_id, "ticket_id": ticket_id}
    parts = (_TICKET_SELECT, *_visibility_sql(viewer, params), " AND t.id = :ticket_id")
    row = (await conn.execute(_sql(parts), params)).mappings().one_or_none()
    return None if row is None else _ticket_from_row(row)
