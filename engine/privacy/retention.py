"""Message retention per tenant: messages older than `retention_days` deleted or anonymised."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue
from sqlalchemy import Connection, text

from engine.privacy.redaction import MEDIA_URIS_OF, REDACT_MESSAGE_SET
from engine.settings_registry import effective

RetentionMode = Literal["delete", "anonymise"]


@dataclass(frozen=True)
class RetentionPolicy:
    tenant_id: int
    days: int
    mode: RetentionMode


@dataclass(frozen=True)
class RetentionBatch:
    messages: int
    media_uris: list[str]


def get_retention_policies(conn: Connection) -> list[RetentionPolicy]:
    """Tenants with a retention period set (system scope). Stored values that no longer fit
    the setting's type fall back to its default (keep forever)."""
    rows = conn.execute(
        text(
            "SELECT d.tenant_id, d.value::text, m.value::text FROM settings d "
            "LEFT JOIN settings m ON m.tenant_id = d.tenant_id AND m.key = 'retention_mode' "
            "WHERE d.key = 'retention_days' AND d.value <> 'null'::jsonb ORDER BY d.tenant_id"
        )
    ).all()
    policies = []
    for tenant_id, days_json, mode_json in rows:
        days = effective("retention_days", _loads(days_json), present=True)
        mode = effective("retention_mode", _loads(mode_json), present=mode_json is not None)
        if days is not None:
            policies.append(RetentionPolicy(int(tenant_id), int(days), mode))
    return policies


def _loads(value: str | None) -> JsonValue:
    return None if value is None else json.loads(value)


# The oldest messages past the cutoff; the cutoff is an instant (now() minus whole days), so
# neither the server's nor the tenant's time zone moves it.
_DUE = """
    SELECT id FROM messages
    WHERE tenant_id = :t AND created_at < now() - make_interval(days => :days) {extra}
    ORDER BY created_at, id LIMIT :limit FOR UPDATE SKIP LOCKED
"""


def apply_retention(conn: Connection, policy: RetentionPolicy, *, limit: int) -> RetentionBatch:
    """Delete or anonymise up to `limit` of the tenant's messages past its retention period.

    Idempotent: anonymised messages are not picked again. Returns the media files the
    messages referred to, to delete after commit. Call inside the tenant's transaction.
    """
    extra = "AND redacted_at IS NULL" if policy.mode == "anonymise" else ""
    due = _DUE.format(extra=extra)
    params = {"t": policy.tenant_id, "days": policy.days, "limit": limit}
    ids = [int(r[0]) for r in conn.execute(text(due), params)]
    if not ids:
        return RetentionBatch(0, [])
    p = {"t": policy.tenant_id, "ids": ids}
    target = "SELECT id FROM messages WHERE tenant_id = :t AND id = ANY(:ids)"
    uris = [str(r[0]) for r in conn.execute(text(MEDIA_URIS_OF.format(target=target)), p) if r[0]]
    if policy.mode == "delete":
        sql = "DELETE FROM messages WHERE tenant_id = :t AND id = ANY(:ids)"
    else:
        sql = f"UPDATE messages SET {REDACT_MESSAGE_SET} WHERE tenant_id = :t AND id = ANY(:ids)"
    count = conn.execute(text(sql), p).rowcount
    return RetentionBatch(count, uris)
