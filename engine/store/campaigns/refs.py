"""Checks that a campaign's references (tags, contacts, an import) are the tenant's own rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text


def known_tag_ids(conn: Connection, *, tenant_id: int, ids: Sequence[int]) -> set[int]:
    """Those of `ids` that are tags of the tenant."""
    rows = conn.execute(
        text("SELECT id FROM tags WHERE tenant_id = :t AND id = ANY(:ids)"),
        {"t": tenant_id, "ids": list(ids)},
    ).all()
    return {int(r[0]) for r in rows}


def known_contact_ids(conn: Connection, *, tenant_id: int, ids: Sequence[int]) -> set[int]:
    """Those of `ids` that are contacts of the tenant (merged ones included: they are skipped
    when the audience is frozen, with the reason shown)."""
    rows = conn.execute(
        text("SELECT id FROM contacts WHERE tenant_id = :t AND id = ANY(:ids)"),
        {"t": tenant_id, "ids": list(ids)},
    ).all()
    return {int(r[0]) for r in rows}


def import_exists(conn: Connection, *, tenant_id: int, import_id: int) -> bool:
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM campaign_imports WHERE tenant_id = :t AND id = :id)"
            ),
            {"t": tenant_id, "id": import_id},
        ).scalar_one()
    )
