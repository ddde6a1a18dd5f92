"""SLA policies (create, change, delete) and the breaches recorded against them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, text

from engine.store.patch import patch_row

# Columns a policy write may set, with the type their bound value is cast to.
POLICY_COLUMNS = {
    "name": "text",
    "queue_id": "bigint",
    "tag_id": "bigint",
    "first_response_s": "integer",
    "next_response_s": "integer",
    "resolution_s": "integer",
    "business_hours_only": "boolean",
    "escalate_to_queue_id": "bigint",
    "escalate_to_user_id": "bigint",
}

_INSERT = text(
    """
    INSERT INTO sla_policies (tenant_id, name, queue_id, tag_id, first_response_s,
        next_response_s, resolution_s, business_hours_only, escalate_to_queue_id,
        escalate_to_user_id)
    VALUES (:t, :name, :queue_id, :tag_id, :first_response_s, :next_response_s, :resolution_s,
        :business_hours_only, :escalate_to_queue_id, :escalate_to_user_id)
    RETURNING id
    """
)
# Once per breach: a clock (ticket creation, or the customer message awaiting an answer) that
# already has a breach of this kind is not breached again, even if its due time moved since.
_RECORD = text(
    """
    INSERT INTO sla_events (tenant_id, policy_id, ticket_id, kind, due_at, breached_at)
    SELECT :t, :policy_id, :ticket_id, :kind, :due_at, :now
    WHERE NOT EXISTS (
        SELECT 1 FROM sla_events
        WHERE tenant_id = :t AND policy_id = :policy_id AND ticket_id = :ticket_id
          AND kind = :kind AND due_at >= :clock_start)
    ON CONFLICT (policy_id, ticket_id, kind, due_at) DO NOTHING
    RETURNING id
    """
)


def insert_policy(conn: Connection, *, tenant_id: int, fields: Mapping[str, object]) -> int:
    """A new policy from POLICY_COLUMNS values (validated by the caller).

    IntegrityError sla_policies_tenant_id_name_key when the name is taken.
    """
    params = {name: fields.get(name) for name in POLICY_COLUMNS}
    params["business_hours_only"] = fields.get("business_hours_only", True)
    return int(conn.execute(_INSERT, {"t": tenant_id, **params}).scalar_one())


def update_policy(
    conn: Connection, *, tenant_id: int, policy_id: int, changes: Mapping[str, object]
) -> bool:
    """Set the named POLICY_COLUMNS; False when no such policy in the tenant."""
    return patch_row(
        conn,
        table="sla_policies",
        tenant_id=tenant_id,
        row_id=policy_id,
        changes=changes,
        columns=POLICY_COLUMNS,
    )


def delete_policy(conn: Connection, *, tenant_id: int, policy_id: int) -> bool:
    """Delete the policy and its recorded breaches; False when there was none."""
    result = conn.execute(
        text("DELETE FROM sla_policies WHERE tenant_id = :t AND id = :id"),
        {"t": tenant_id, "id": policy_id},
    )
    return result.rowcount > 0


def insert_breach(
    conn: Connection,
    *,
    tenant_id: int,
    policy_id: int,
    ticket_id: int,
    kind: str,
    due_at: datetime,
    clock_start: datetime,
    now: datetime,
) -> int | None:
    """Record a breach once; its id, or None when this clock was already breached."""
    params = {
        "t": tenant_id,
        "policy_id": policy_id,
        "ticket_id": ticket_id,
        "kind": kind,
        "due_at": due_at,
        "clock_start": clock_start,
        "now": now,
    }
    found = conn.execute(_RECORD, params).scalar_one_or_none()
    return None if found is None else int(found)


def get_sla_tenants(conn: Connection) -> list[int]:
    """Tenants with at least one SLA policy (system scope)."""
    rows = conn.execute(text("SELECT DISTINCT tenant_id FROM sla_policies ORDER BY tenant_id"))
    return [int(r[0]) for r in rows]
