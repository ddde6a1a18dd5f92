"""Everything the engine holds about one contact, as one JSON document (LGPD art. 18 / GDPR 15)."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, JsonValue
from sqlalchemy import Connection, text

EXPORT_FORMAT = 1
EXPORTED_ACTION = "contact.exported"

_TICKETS = "SELECT id FROM tickets WHERE tenant_id = :t AND contact_id = :c"
_MESSAGES = "SELECT id FROM messages WHERE tenant_id = :t AND contact_id = :c"

# Each section is a query over the tenant (:t) and the contact (:c); rows become objects.
_SECTIONS: dict[str, str] = {
    "identities": "SELECT * FROM contact_identities WHERE tenant_id = :t AND contact_id = :c",
    "custom_fields": (
        "SELECT name, value FROM contact_custom_fields WHERE tenant_id = :t AND contact_id = :c"
    ),
    "tags": (
        "SELECT tg.id, tg.name FROM contact_tags ct JOIN tags tg ON tg.id = ct.tag_id "
        "WHERE ct.tenant_id = :t AND ct.contact_id = :c"
    ),
    "wallet": (
        "SELECT w.user_id, u.name AS user_name FROM wallets w JOIN users u ON u.id = w.user_id "
        "WHERE w.tenant_id = :t AND w.contact_id = :c"
    ),
    "tickets": "SELECT * FROM tickets WHERE tenant_id = :t AND contact_id = :c",
    "ticket_events": (
        f"SELECT * FROM ticket_events WHERE tenant_id = :t AND ticket_id IN ({_TICKETS})"
    ),
    "messages": "SELECT * FROM messages WHERE tenant_id = :t AND contact_id = :c",
    "status_events": (
        f"SELECT * FROM message_status_events WHERE tenant_id = :t AND message_id IN ({_MESSAGES})"
    ),
    "reactions": "SELECT * FROM message_reactions WHERE tenant_id = :t AND contact_id = :c",
    "media": (
        "SELECT m.id AS message_id, e.ordinality - 1 AS index, e.value AS media "
        "FROM messages m, jsonb_array_elements(m.media) WITH ORDINALITY AS e "
        "WHERE m.tenant_id = :t AND m.contact_id = :c"
    ),
    "campaigns": (
        "SELECT cc.*, cp.name AS campaign_name FROM campaign_contacts cc "
        "JOIN campaigns cp ON cp.id = cc.campaign_id WHERE cc.tenant_id = :t AND cc.contact_id = :c"
    ),
    "audit_entries": (
        "SELECT * FROM audit_log WHERE tenant_id = :t AND (target = 'contact:' || CAST(:c AS text) "
        "OR data @> jsonb_build_object('contact_id', CAST(:c AS bigint)) "
        "OR data -> 'contact_ids' @> to_jsonb(CAST(:c AS bigint)))"
    ),
}


class ContactExport(BaseModel):
    """Rows as PostgreSQL holds them (timestamps ISO 8601, UTC), one list per table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int
    contact: dict[str, JsonValue]
    identities: list[JsonValue]
    custom_fields: list[JsonValue]
    tags: list[JsonValue]
    wallet: list[JsonValue]
    tickets: list[JsonValue]
    ticket_events: list[JsonValue]
    messages: list[JsonValue]
    status_events: list[JsonValue]
    reactions: list[JsonValue]
    media: list[JsonValue]
    campaigns: list[JsonValue]
    audit_entries: list[JsonValue]


def export_contact(
    conn: Connection, *, tenant_id: int, contact_id: int, user_id: int | None
) -> ContactExport | None:
    """The export, or None when the tenant has no such contact. Records an audit entry
    (who exported whom; no personal data) in the same transaction."""
    params = {"t": tenant_id, "c": contact_id}
    contact = _json(conn, "SELECT * FROM contacts WHERE tenant_id = :t AND id = :c", params)
    if not contact:
        return None
    document: dict[str, JsonValue] = {"format": EXPORT_FORMAT, "contact": contact[0]}
    for name, sql in _SECTIONS.items():
        document[name] = _json(conn, sql + " ORDER BY 1", params)
    insert_audit(
        conn, tenant_id=tenant_id, user_id=user_id, action=EXPORTED_ACTION, contact_id=contact_id
    )
    return ContactExport.model_validate(document)


def insert_audit(
    conn: Connection,
    *,
    tenant_id: int,
    user_id: int | None,
    action: str,
    contact_id: int,
    data: dict[str, JsonValue] | None = None,
) -> None:
    """An audit_log entry naming the contact by id only."""
    conn.execute(
        text(
            "INSERT INTO audit_log (tenant_id, user_id, action, target, data) "
            "VALUES (:t, :u, :a, :target, CAST(:d AS jsonb))"
        ),
        {
            "t": tenant_id,
            "u": user_id,
            "a": action,
            "target": f"contact:{contact_id}",
            "d": json.dumps(data or {}),
        },
    )


def _json(conn: Connection, sql: str, params: dict[str, int]) -> list[JsonValue]:
    """The rows of `sql` as JSON objects, converted by PostgreSQL (timestamps in ISO 8601)."""
    column = conn.execute(
        text(f"SELECT coalesce(jsonb_agg(to_jsonb(x)), '[]')::text FROM ({sql}) AS x"),
        params,
    ).scalar_one()
    rows: list[JsonValue] = json.loads(column)
    return rows
