"""Contacts as the API shows them: the card (identities, tags, custom fields, wallet) and lists."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import IdView, UtcDatetime, View, contains_pattern
from engine.queries.tickets import IdentityView


class ContactTag(View):
    id: int
    name: str
    color: str | None


class ContactSummary(IdView):
    name: str | None
    phone: str | None
    email: str | None
    is_group: bool
    opted_out: bool
    tag_ids: tuple[int, ...]
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ContactDetail(IdView):
    """GET /api/v1/contacts/{id}: the read API's contact card plus what the CRM adds."""

    name: str | None
    phone: str | None
    email: str | None
    is_group: bool
    opted_out: bool
    identities: tuple[IdentityView, ...]
    custom_fields: dict[str, str]
    tags: tuple[ContactTag, ...]
    wallet_user_id: int | None
    merged_into_id: int | None  # set once merged: the contact that now holds everything
    created_at: UtcDatetime
    updated_at: UtcDatetime


# Every joined table is filtered on tenant_id too: a stray cross-tenant row never shows.
_LIST = """
    SELECT c.id, c.name, c.phone, c.email, c.is_group, c.opted_out, c.created_at, c.updated_at,
           coalesce((SELECT array_agg(ct.tag_id ORDER BY ct.tag_id) FROM contact_tags ct
                     WHERE ct.contact_id = c.id AND ct.tenant_id = :t), '{}') AS tag_ids
    FROM contacts c
    WHERE c.tenant_id = :t AND c.merged_into_id IS NULL
"""
_SEARCH = " AND (c.name ILIKE :pattern OR c.email ILIKE :pattern OR c.phone LIKE :digits)"
_TAG = (
    " AND EXISTS (SELECT 1 FROM contact_tags ct"
    " WHERE ct.contact_id = c.id AND ct.tenant_id = :t AND ct.tag_id = :tag_id)"
)
_OPTED_OUT = " AND c.opted_out = :opted_out"
# Newest first: the contact just created or just written in is the one an agent looks for.
_PAGE = " AND c.id < :before ORDER BY c.id DESC LIMIT :limit"

_DETAIL = text(
    """
    SELECT c.id, c.name, c.phone, c.email, c.is_group, c.opted_out, c.merged_into_id,
           c.created_at, c.updated_at,
           (SELECT w.user_id FROM wallets w
             WHERE w.contact_id = c.id AND w.tenant_id = :t) AS wallet_user_id,
           coalesce((SELECT jsonb_object_agg(f.name, f.value) FROM contact_custom_fields f
                     WHERE f.contact_id = c.id AND f.tenant_id = :t), '{}') AS custom_fields,
           coalesce((SELECT jsonb_agg(jsonb_build_object(
                                'id', tg.id, 'name', tg.name, 'color', tg.color) ORDER BY tg.id)
                     FROM contact_tags ct JOIN tags tg ON tg.id = ct.tag_id AND tg.tenant_id = :t
                     WHERE ct.contact_id = c.id AND ct.tenant_id = :t), '[]') AS tags,
           coalesce((SELECT jsonb_agg(jsonb_build_object(
                                'channel_type', i.channel_type, 'external_id', i.external_id)
                                ORDER BY i.id)
                     FROM contact_identities i
                     WHERE i.contact_id = c.id AND i.tenant_id = :t), '[]') AS identities
    FROM contacts c
    WHERE c.tenant_id = :t AND c.id = :id
    """
)
_BY_PHONE = text("SELECT id FROM contacts WHERE tenant_id = :t AND phone = :phone")


async def list_contacts(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    search: str | None,
    tag_id: int | None,
    opted_out: bool | None,
    before_id: int | None,
    limit: int,
) -> list[ContactSummary]:
    """Up to `limit` contacts with id < `before_id`, newest first; merged ones are left out.

    `search` matches part of the name or e-mail, or the digits of the phone. Read-only.
    """
    sql = _LIST
    params: dict[str, object] = {"t": tenant_id, "before": before_id or 2**63 - 1, "limit": limit}
    if search is not None:  # fixed fragments only; every value is bound
        sql += _SEARCH
        digits = "".join(ch for ch in search if ch.isdigit())
        params["pattern"] = contains_pattern(search)
        # No digits: a pattern no phone matches, rather than every phone ("%%").
        params["digits"] = f"%{digits}%" if digits else "-"
    if tag_id is not None:
        sql += _TAG
        params["tag_id"] = tag_id
    if opted_out is not None:
        sql += _OPTED_OUT
        params["opted_out"] = opted_out
    rows = (await conn.execute(text(sql + _PAGE), params)).mappings().all()
    return [ContactSummary.model_validate(dict(r)) for r in rows]


async def get_contact_detail(
    conn: AsyncConnection, tenant_id: int, contact_id: int
) -> ContactDetail | None:
    """The tenant's contact card, or None. Read-only."""
    params = {"t": tenant_id, "id": contact_id}
    row = (await conn.execute(_DETAIL, params)).mappings().one_or_none()
    return None if row is None else ContactDetail.model_validate(dict(row))


async def get_contact_id_by_phone(conn: AsyncConnection, tenant_id: int, phone: str) -> int | None:
    """The contact holding this E.164 number in the tenant, if any."""
    value = (await conn.execute(_BY_PHONE, {"t": tenant_id, "phone": phone})).scalar_one_or_none()
    return None if value is None else int(value)
