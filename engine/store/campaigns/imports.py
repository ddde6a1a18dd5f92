"""CSV imports of contacts for campaigns: upsert the valid rows, keep the result to target later.

An import is kept as an audit_log row (action IMPORT_ACTION) holding its contact ids and its
bad rows: the schema has no imports table, and this is a record of who imported what anyway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, text

from engine.campaigns import ImportRow, ParsedCsv, RowError

IMPORT_ACTION = "campaign.csv_import"
# Bad rows kept and returned per import; the count is always complete.
MAX_LISTED_ERRORS = 1_000
# Channels that address people by phone number: imported numbers become identities there.
PHONE_CHANNELS = frozenset({"whatsapp", "sms"})
_CHUNK = 5_000


class ImportResult(BaseModel):
    """What an import did: valid rows kept (`created` of them new contacts), bad rows listed."""

    model_config = ConfigDict(frozen=True)

    id: int
    channel_id: int
    total_rows: int
    valid: int
    created: int
    error_count: int
    errors: list[RowError]
    errors_truncated: bool
    created_at: datetime


_UPSERT = text(
    """
    INSERT INTO contacts (tenant_id, name, phone)
    SELECT :t, i.name, i.phone
    FROM unnest(CAST(:phones AS text[]), CAST(:names AS text[])) AS i(phone, name)
    ON CONFLICT (tenant_id, phone) WHERE phone IS NOT NULL DO UPDATE SET
        -- a name the team already gave a contact wins over a list's
        name = coalesce(contacts.name, EXCLUDED.name),
        updated_at = CASE WHEN contacts.name IS NULL AND EXCLUDED.name IS NOT NULL
                          THEN now() ELSE contacts.updated_at END
    RETURNING id, phone, (xmax = 0) AS created
    """
)
_IDENTITIES = text(
    """
    INSERT INTO contact_identities (tenant_id, contact_id, channel_type, identity_key, external_id)
    SELECT :t, x.c, :kind, x.p, CASE WHEN :kind = 'whatsapp' THEN ltrim(x.p, '+') ELSE x.p END
    FROM unnest(CAST(:ids AS bigint[]), CAST(:phones AS text[])) AS x(c, p)
    ON CONFLICT (tenant_id, channel_type, identity_key) DO NOTHING
    """
)


def upsert_imported_contacts(
    conn: Connection, *, tenant_id: int, channel_type: str, rows: Sequence[ImportRow]
) -> tuple[list[int], int]:
    """(contact ids in row order, how many were created). One contact per phone: a known
    number keeps its contact (and its name, unless it had none). On WhatsApp and SMS each
    number also becomes the contact's identity (WhatsApp: digits, the wa_id; SMS: E.164)."""
    ids: list[int] = []
    created = 0
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        phones = [r.phone for r in chunk]
        found = conn.execute(
            _UPSERT, {"t": tenant_id, "phones": phones, "names": [r.name for r in chunk]}
        ).all()
        by_phone = {str(r[1]): int(r[0]) for r in found}
        created += sum(1 for r in found if r[2])
        chunk_ids = [by_phone[p] for p in phones]
        if channel_type in PHONE_CHANNELS:
            conn.execute(
                _IDENTITIES,
                {"t": tenant_id, "kind": channel_type, "ids": chunk_ids, "phones": phones},
            )
        ids.extend(chunk_ids)
    return ids, created


def insert_import(
    conn: Connection,
    *,
    tenant_id: int,
    channel_id: int,
    channel_type: str,
    parsed: ParsedCsv,
    user_id: int | None,
) -> ImportResult:
    """Upsert the valid rows as contacts and record the import; bad rows are only reported."""
    ids, created = upsert_imported_contacts(
        conn, tenant_id=tenant_id, channel_type=channel_type, rows=parsed.rows
    )
    listed = [e.model_dump() for e in parsed.errors[:MAX_LISTED_ERRORS]]
    data = {
        "channel_id": channel_id,
        "total_rows": parsed.total_rows,
        "valid": len(ids),
        "created": created,
        "error_count": len(parsed.errors),
        "errors": listed,
        "contact_ids": ids,
    }
    row = conn.execute(
        text(
            "INSERT INTO audit_log (tenant_id, user_id, action, target, data) "
            "VALUES (:t, :u, :a, :target, CAST(:d AS jsonb)) RETURNING id, created_at"
        ),
        {
            "t": tenant_id,
            "u": user_id,
            "a": IMPORT_ACTION,
            "target": f"channel:{channel_id}",
            "d": json.dumps(data),
        },
    ).one()
    return _result(int(row[0]), row[1], data)


def get_import(conn: Connection, *, tenant_id: int, import_id: int) -> ImportResult | None:
    """The import's summary and bad rows (not its contact ids); None if not the tenant's."""
    row = conn.execute(
        text(
            "SELECT id, created_at, data - 'contact_ids' FROM audit_log "
            "WHERE tenant_id = :t AND id = :id AND action = :a"
        ),
        {"t": tenant_id, "id": import_id, "a": IMPORT_ACTION},
    ).first()
    return None if row is None else _result(int(row[0]), row[1], row[2])


class _Stored(BaseModel):
    """audit_log.data of an import, less its contact ids."""

    channel_id: int
    total_rows: int
    valid: int
    created: int
    error_count: int
    errors: list[RowError]


def _result(import_id: int, created_at: datetime, data: object) -> ImportResult:
    stored = _Stored.model_validate(data)
    return ImportResult(
        id=import_id,
        **stored.model_dump(exclude={"errors"}),
        errors=stored.errors,
        errors_truncated=stored.error_count > len(stored.errors),
        created_at=created_at,
    )
