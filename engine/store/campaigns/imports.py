"""CSV imports of contacts for campaigns: upsert the valid rows, keep the result to target later.

An import is a campaign_imports row (who imported which file, its counts and status), its bad
rows in campaign_import_errors (line and reason) and the contacts its good rows became in
campaign_import_contacts, which a campaign's `audience.csv_import_id` freezes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, text

from engine.campaigns import ImportRow, ParsedCsv, RowError

# Bad rows returned per read of an import (page on with `errors_after_line`); all are kept.
MAX_LISTED_ERRORS = 1_000
# Channels that address people by phone number: imported numbers become identities there.
PHONE_CHANNELS = frozenset({"whatsapp", "sms"})
_CHUNK = 5_000


ImportStatus = Literal["completed", "completed_with_errors", "no_valid_rows"]


class ImportResult(BaseModel):
    """What an import did: valid rows kept (`created` of them new contacts), bad rows listed
    (up to MAX_LISTED_ERRORS from a line on; `errors_truncated` says more follow)."""

    model_config = ConfigDict(frozen=True)

    id: int
    channel_id: int
    campaign_id: int | None
    filename: str | None
    created_by: int | None
    status: ImportStatus
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


def import_status(parsed: ParsedCsv) -> ImportStatus:
    if not parsed.rows:
        return "no_valid_rows"
    return "completed_with_errors" if parsed.errors else "completed"


def insert_import(
    conn: Connection,
    *,
    tenant_id: int,
    channel_id: int,
    channel_type: str,
    parsed: ParsedCsv,
    user_id: int | None,
    filename: str | None = None,
) -> ImportResult:
    """Upsert the valid rows as contacts and record the import with every bad row."""
    ids, created = upsert_imported_contacts(
        conn, tenant_id=tenant_id, channel_type=channel_type, rows=parsed.rows
    )
    import_id = int(
        conn.execute(
            text(
                "INSERT INTO campaign_imports (tenant_id, channel_id, filename, created_by,"
                " rows_total, rows_valid, rows_invalid, contacts_created, status) "
                "VALUES (:t, :ch, :f, :u, :total, :valid, :invalid, :created, :status) "
                "RETURNING id"
            ),
            {
                "t": tenant_id,
                "ch": channel_id,
                "f": filename,
                "u": user_id,
                "total": parsed.total_rows,
                "valid": len(ids),
                "invalid": len(parsed.errors),
                "created": created,
                "status": import_status(parsed),
            },
        ).scalar_one()
    )
    _insert_contacts(conn, tenant_id, import_id, ids, [r.line for r in parsed.rows])
    _insert_errors(conn, tenant_id, import_id, parsed.errors)
    found = get_import(conn, tenant_id=tenant_id, import_id=import_id)
    assert found is not None
    return found


def _insert_contacts(
    conn: Connection, tenant_id: int, import_id: int, ids: list[int], lines: list[int]
) -> None:
    for start in range(0, len(ids), _CHUNK):
        conn.execute(
            text(
                "INSERT INTO campaign_import_contacts (tenant_id, import_id, contact_id, line) "
                "SELECT :t, :i, x.c, x.l "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:lines AS integer[])) AS x(c, l) "
                "ON CONFLICT DO NOTHING"
            ),
            {
                "t": tenant_id,
                "i": import_id,
                "ids": ids[start : start + _CHUNK],
                "lines": lines[start : start + _CHUNK],
            },
        )


def _insert_errors(
    conn: Connection, tenant_id: int, import_id: int, errors: Sequence[RowError]
) -> None:
    for start in range(0, len(errors), _CHUNK):
        chunk = errors[start : start + _CHUNK]
        conn.execute(
            text(
                "INSERT INTO campaign_import_errors (tenant_id, import_id, line, reason) "
                "SELECT :t, :i, x.l, x.r "
                "FROM unnest(CAST(:lines AS integer[]), CAST(:reasons AS text[])) AS x(l, r)"
            ),
            {
                "t": tenant_id,
                "i": import_id,
                "lines": [e.line for e in chunk],
                "reasons": [e.reason for e in chunk],
            },
        )


def get_import(
    conn: Connection, *, tenant_id: int, import_id: int, errors_after_line: int = 0
) -> ImportResult | None:
    """The import's summary and its bad rows after `errors_after_line`, MAX_LISTED_ERRORS at
    most, by line; None if it is not the tenant's."""
    row = conn.execute(
        text(
            "SELECT id, channel_id, campaign_id, filename, created_by, status,"
            " rows_total AS total_rows, rows_valid AS valid, contacts_created AS created,"
            " rows_invalid AS error_count, created_at "
            "FROM campaign_imports WHERE tenant_id = :t AND id = :id"
        ),
        {"t": tenant_id, "id": import_id},
    ).first()
    if row is None:
        return None
    errors = conn.execute(
        text(
            "SELECT line, reason FROM campaign_import_errors "
            "WHERE tenant_id = :t AND import_id = :id AND line > :after "
            "ORDER BY line LIMIT :limit"
        ),
        {
            "t": tenant_id,
            "id": import_id,
            "after": errors_after_line,
            "limit": MAX_LISTED_ERRORS + 1,
        },
    ).all()
    listed = [RowError(line=int(e[0]), reason=str(e[1])) for e in errors]
    return ImportResult(
        **row._mapping,
        errors=listed[:MAX_LISTED_ERRORS],
        errors_truncated=len(listed) > MAX_LISTED_ERRORS,
    )


def attach_import(conn: Connection, *, tenant_id: int, import_id: int, campaign_id: int) -> None:
    """Name the first campaign that targets the import on it (later ones leave it be)."""
    conn.execute(
        text(
            "UPDATE campaign_imports SET campaign_id = :c "
            "WHERE tenant_id = :t AND id = :i AND campaign_id IS NULL"
        ),
        {"t": tenant_id, "i": import_id, "c": campaign_id},
    )
