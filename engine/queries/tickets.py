"""Ticket-screen reads: ticket list and detail, a ticket's messages, a contact's card."""

from __future__ import annotations

import base64
import functools
import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import RowMapping, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

MAX_BIGINT = 2**63 - 1
_MAX_CURSOR_CHARS = 200

TicketStatus = Literal["pending", "open", "closed"]
MessageStatus = Literal["pending", "sent", "delivered", "read", "failed", "received"]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class _View(BaseModel):
    """Base of API views: immutable, and exactly the fields the API returns."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class _Stored(BaseModel):
    """Base for shapes read back from jsonb columns: keys we do not expose are dropped."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ChannelRef(_View):
    id: int
    type: str
    name: str


class ContactRef(_View):
    id: int
    name: str | None
    phone: str | None


class TicketView(_View):
    id: int
    status: TicketStatus
    protocol: str
    channel: ChannelRef
    contact: ContactRef
    unread_count: int
    answered: bool
    is_group: bool
    last_message_at: UtcDatetime | None
    queue_id: int | None
    user_id: int | None
    closed_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class TicketCursor(_View):
    """Position in the ticket list: the last ticket of the previous page."""

    last_message_at: UtcDatetime | None
    id: int = Field(ge=1, le=MAX_BIGINT)

    def encode(self) -> str:
        """The opaque string handed to clients."""
        stamp = None if self.last_message_at is None else self.last_message_at.isoformat()
        raw = json.dumps([stamp, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, value: str) -> TicketCursor:
        """Parse a string made by `encode`; ValueError for anything else."""
        if not value or len(value) > _MAX_CURSOR_CHARS:
            raise ValueError("not a cursor returned by this API")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            stamp, ticket_id = json.loads(raw)
            return cls.model_validate({"last_message_at": stamp, "id": ticket_id})
        except (ValueError, TypeError):  # bad base64/JSON/shape; ValidationError is a ValueError
            raise ValueError("not a cursor returned by this API") from None


class TicketPage(_View):
    items: tuple[TicketView, ...]
    next_cursor: str | None


class MediaView(_Stored):
    type: str
    mime_type: str | None = None
    provider_media_id: str | None = None
    filename: str | None = None
    caption: str | None = None


class LocationView(_Stored):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class StatusView(_View):
    """One step of an outbound message's delivery, as the provider reported it."""

    status: str
    at: UtcDatetime
    error_code: str | None = None
    error_message: str | None = None


class MessageView(_View):
    id: int
    ticket_id: int
    direction: Literal["in", "out"]
    type: str
    body: str | None
    media: tuple[MediaView, ...]
    location: LocationView | None
    provider_message_id: str | None
    quoted_message_id: int | None
    status: MessageStatus
    error_code: str | None
    error_message: str | None
    status_history: tuple[StatusView, ...] = ()
    subject: str | None = None
    author_name: str | None = None
    send_type: str | None
    user_id: int | None
    provider_timestamp: UtcDatetime | None
    edited_at: UtcDatetime | None
    deleted_at: UtcDatetime | None
    created_at: UtcDatetime


class MessagePage(_View):
    items: tuple[MessageView, ...]
    next_after_id: int | None


class IdentityView(_View):
    channel_type: str
    external_id: str


class ContactView(_View):
    id: int
    name: str | None
    phone: str | None
    email: str | None
    is_group: bool
    opted_out: bool
    identities: tuple[IdentityView, ...]
    created_at: UtcDatetime
    updated_at: UtcDatetime


# Channel and contact are filtered on tenant_id too, so a corrupt cross-tenant foreign key
# can never pull another tenant's name or phone into a ticket.
_TICKET_SELECT = """
    SELECT t.id, t.status, t.protocol, t.unread_count, t.answered, t.is_group,
           t.last_message_at, t.queue_id, t.user_id, t.closed_at, t.created_at, t.updated_at,
           ch.id AS channel_id, ch.type AS channel_type, ch.name AS channel_name,
           co.id AS contact_id, co.name AS contact_name, co.phone AS contact_phone
    FROM tickets t
    JOIN channels ch ON ch.id = t.channel_id AND ch.tenant_id = :tenant_id
    JOIN contacts co ON co.id = t.contact_id AND co.tenant_id = :tenant_id
    WHERE t.tenant_id = :tenant_id
"""
_BY_STATUS = " AND t.status = :status"
# Order is last_message_at DESC NULLS LAST, id DESC: after a dated ticket come older ones,
# its older-id twins, then every undated one; after an undated ticket only undated ones.
_AFTER_DATED = " AND ((t.last_message_at, t.id) < (:c_ts, :c_id) OR t.last_message_at IS NULL)"
_AFTER_UNDATED = " AND t.last_message_at IS NULL AND t.id < :c_id"
_TICKET_ORDER = " ORDER BY t.last_message_at DESC NULLS LAST, t.id DESC LIMIT :limit"

_GET_TICKET = text(_TICKET_SELECT + " AND t.id = :ticket_id")

_MESSAGE_SELECT = """
    SELECT m.id, m.ticket_id, m.direction, m.type, m.body, m.media, m.location,
           m.provider_message_id, m.quoted_message_id, m.status, m.error_code, m.error_message,
           m.send_type, m.user_id, m.provider_timestamp, m.edited_at, m.deleted_at, m.created_at,
           m.subject, m.author_name,
           coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'status', e.status, 'at', e.provider_timestamp,
                        'error_code', e.error_code, 'error_message', e.error_message)
                      ORDER BY e.provider_timestamp, e.id)
                     FROM message_status_events e
                     WHERE e.message_id = m.id AND e.tenant_id = :tenant_id), '[]'::jsonb)
             AS status_history
    FROM messages m
    WHERE m.tenant_id = :tenant_id
"""

_LIST_MESSAGES = text(
    _MESSAGE_SELECT
    + " AND m.ticket_id = :ticket_id AND m.id > :after_id ORDER BY m.id LIMIT :limit"
)

_GET_MESSAGE = text(_MESSAGE_SELECT + " AND m.id = :message_id")

_GET_CONTACT = text(
    """
    SELECT c.id, c.name, c.phone, c.email, c.is_group, c.opted_out, c.created_at, c.updated_at
    FROM contacts c
    WHERE c.tenant_id = :tenant_id AND c.id = :contact_id
    """
)

_CONTACT_IDENTITIES = text(
    """
    SELECT i.channel_type, i.external_id
    FROM contact_identities i
    WHERE i.tenant_id = :tenant_id AND i.contact_id = :contact_id
    ORDER BY i.id
    """
)


@functools.cache
def _list_tickets_sql(by_status: bool, after: Literal["dated", "undated"] | None) -> TextClause:
    """One of six fixed statements; values are always bound, never spliced."""
    sql = _TICKET_SELECT + (_BY_STATUS if by_status else "")
    if after == "dated":
        sql += _AFTER_DATED
    elif after == "undated":
        sql += _AFTER_UNDATED
    return text(sql + _TICKET_ORDER)


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
        closed_at=row["closed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def list_tickets(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    status: TicketStatus | None,
    limit: int,
    before: TicketCursor | None,
) -> TicketPage:
    """One page of the tenant's tickets, most recent activity first. Read-only.

    `before` is the previous page's cursor; `next_cursor` is None on the last page.
    """
    after: Literal["dated", "undated"] | None = None
    params: dict[str, object] = {"tenant_id": tenant_id, "limit": limit + 1}
    if status is not None:
        params["status"] = status
    if before is not None:
        after = "undated" if before.last_message_at is None else "dated"
        params["c_id"] = before.id
        if before.last_message_at is not None:
            params["c_ts"] = before.last_message_at
    sql = _list_tickets_sql(status is not None, after)
    rows = (await conn.execute(sql, params)).mappings().all()
    items = tuple(_ticket_from_row(row) for row in rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = TicketCursor(last_message_at=last.last_message_at, id=last.id).encode()
    return TicketPage(items=items, next_cursor=next_cursor)


async def get_ticket(conn: AsyncConnection, tenant_id: int, ticket_id: int) -> TicketView | None:
    """The tenant's ticket, or None when it does not exist in this tenant. Read-only."""
    params = {"tenant_id": tenant_id, "ticket_id": ticket_id}
    row = (await conn.execute(_GET_TICKET, params)).mappings().one_or_none()
    return None if row is None else _ticket_from_row(row)


async def list_messages(
    conn: AsyncConnection, tenant_id: int, ticket_id: int, *, limit: int, after_id: int | None
) -> MessagePage:
    """Up to `limit` messages of a ticket with id > `after_id`, oldest first. Read-only.

    An unknown ticket yields an empty page; callers wanting a 404 check `get_ticket` first.
    """
    params = {
        "tenant_id": tenant_id,
        "ticket_id": ticket_id,
        "after_id": after_id or 0,
        "limit": limit + 1,
    }
    rows = (await conn.execute(_LIST_MESSAGES, params)).mappings().all()
    items = tuple(MessageView.model_validate(dict(row)) for row in rows[:limit])
    next_after_id = items[-1].id if len(rows) > limit else None
    return MessagePage(items=items, next_after_id=next_after_id)


async def get_contact(conn: AsyncConnection, tenant_id: int, contact_id: int) -> ContactView | None:
    """The tenant's contact with its channel identities, or None. Read-only."""
    params = {"tenant_id": tenant_id, "contact_id": contact_id}
    row = (await conn.execute(_GET_CONTACT, params)).mappings().one_or_none()
    if row is None:
        return None
    identities = (await conn.execute(_CONTACT_IDENTITIES, params)).mappings().all()
    return ContactView(
        **row,
        identities=tuple(IdentityView.model_validate(dict(i)) for i in identities),
    )


async def get_message(conn: AsyncConnection, tenant_id: int, message_id: int) -> MessageView | None:
    """One of the tenant's messages with its delivery history, or None. Read-only."""
    params = {"tenant_id": tenant_id, "message_id": message_id}
    row = (await conn.execute(_GET_MESSAGE, params)).mappings().one_or_none()
    return None if row is None else MessageView.model_validate(dict(row))
