"""Contacts as agents edit them: create, change, custom fields, tags, wallet owner, delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, text

from engine.store.patch import patch_row

# Columns PATCH may set, with the type their bound value is cast to.
CONTACT_COLUMNS = {"name": "text", "email": "text", "opted_out": "boolean"}


def insert_contact(
    conn: Connection, *, tenant_id: int, name: str, phone: str | None, email: str | None
) -> int:
    """A new contact; IntegrityError contacts_phone_key when the number already has one."""
    return int(
        conn.execute(
            text(
                "INSERT INTO contacts (tenant_id, name, phone, email) "
                "VALUES (:t, :name, :phone, :email) RETURNING id"
            ),
            {"t": tenant_id, "name": name, "phone": phone, "email": email},
        ).scalar_one()
    )


def lock_contact(conn: Connection, *, tenant_id: int, contact_id: int) -> bool:
    """Lock the contact's row for this transaction; False when there is no such contact."""
    row = conn.execute(
        text("SELECT id FROM contacts WHERE tenant_id = :t AND id = :id FOR UPDATE"),
        {"t": tenant_id, "id": contact_id},
    ).first()
    return row is not None


def update_contact(
    conn: Connection, *, tenant_id: int, contact_id: int, changes: Mapping[str, object]
) -> bool:
    """Set the named CONTACT_COLUMNS; False when no such contact in the tenant."""
    return patch_row(
        conn,
        table="contacts",
        tenant_id=tenant_id,
        row_id=contact_id,
        changes=changes,
        columns=CONTACT_COLUMNS,
        touch=True,
    )


def replace_custom_fields(
    conn: Connection, *, tenant_id: int, contact_id: int, fields: Mapping[str, str]
) -> None:
    """Make `fields` the contact's whole set of custom fields (names not sent are removed)."""
    conn.execute(
        text("DELETE FROM contact_custom_fields WHERE tenant_id = :t AND contact_id = :c"),
        {"t": tenant_id, "c": contact_id},
    )
    if fields:
        conn.execute(
            text(
                "INSERT INTO contact_custom_fields (tenant_id, contact_id, name, value) "
                "SELECT :t, :c, n, v FROM unnest(CAST(:names AS text[]), CAST(:vals AS text[]))"
                " AS f(n, v)"
            ),
            {"t": tenant_id, "c": contact_id, "names": list(fields), "vals": list(fields.values())},
        )
    _touch(conn, tenant_id, contact_id)


def replace_contact_tags(
    conn: Connection, *, tenant_id: int, contact_id: int, tag_ids: Sequence[int]
) -> None:
    """Make `tag_ids` (already checked to be the tenant's tags) the contact's whole tag set."""
    params = {"t": tenant_id, "c": contact_id, "ids": list(tag_ids)}
    conn.execute(
        text(
            "DELETE FROM contact_tags WHERE tenant_id = :t AND contact_id = :c "
            "AND NOT (tag_id = ANY(:ids))"
        ),
        params,
    )
    conn.execute(
        text(
            "INSERT INTO contact_tags (tenant_id, contact_id, tag_id) "
            "SELECT :t, :c, x FROM unnest(CAST(:ids AS bigint[])) AS x "
            "ON CONFLICT (contact_id, tag_id) DO NOTHING"
        ),
        params,
    )
    _touch(conn, tenant_id, contact_id)


def set_wallet_owner(
    conn: Connection, *, tenant_id: int, contact_id: int, user_id: int | None
) -> None:
    """Make `user_id` (checked to be the tenant's user) the contact's owner; None: nobody."""
    params = {"t": tenant_id, "c": contact_id, "u": user_id}
    if user_id is None:
        conn.execute(text("DELETE FROM wallets WHERE tenant_id = :t AND contact_id = :c"), params)
    else:
        conn.execute(
            text(
                "INSERT INTO wallets (tenant_id, contact_id, user_id) VALUES (:t, :c, :u) "
                "ON CONFLICT (contact_id) DO UPDATE SET user_id = EXCLUDED.user_id"
            ),
            params,
        )
    _touch(conn, tenant_id, contact_id)


def contact_has_tickets(conn: Connection, *, tenant_id: int, contact_id: int) -> bool:
    return bool(
        conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM tickets WHERE tenant_id = :t AND contact_id = :c)"),
            {"t": tenant_id, "c": contact_id},
        ).scalar_one()
    )


def delete_contact(conn: Connection, *, tenant_id: int, contact_id: int) -> bool:
    """Delete the contact with its identities, tags, fields and wallet; False if none.

    Check `contact_has_tickets` first under `lock_contact`: tickets would cascade away.
    """
    result = conn.execute(
        text("DELETE FROM contacts WHERE tenant_id = :t AND id = :c"),
        {"t": tenant_id, "c": contact_id},
    )
    return result.rowcount > 0


def _touch(conn: Connection, tenant_id: int, contact_id: int) -> None:
    conn.execute(
        text("UPDATE contacts SET updated_at = now() WHERE tenant_id = :t AND id = :c"),
        {"t": tenant_id, "c": contact_id},
    )
