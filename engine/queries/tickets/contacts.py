"""The contact card shown beside a ticket: the contact and its channel identities."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.tickets.views import ContactView, IdentityView

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
