"""API clients (hashed tokens) and the rows their sends write: idempotency keys, recipients."""

from __future__ import annotations

from sqlalchemy import Connection, text

from engine.events import Frozen


def insert_api_client(
    conn: Connection,
    *,
    tenant_id: int,
    name: str,
    permissions: list[str],
    token_hash: str,
    token_prefix: str,
    created_by: int,
) -> int:
    """Store a new client; only the token's digest and first characters are kept."""
    return int(
        conn.execute(
            text(
                "INSERT INTO api_clients (tenant_id, name, permissions, token_hash, "
                "token_prefix, created_by) VALUES (:t, :n, :p, :h, :prefix, :by) RETURNING id"
            ),
            {
                "t": tenant_id,
                "n": name,
                "p": permissions,
                "h": token_hash,
                "prefix": token_prefix,
                "by": created_by,
            },
        ).scalar_one()
    )


def revoke_api_client(conn: Connection, *, tenant_id: int, client_id: int) -> bool:
    """Revoke a client (idempotent: the first revocation time stays). False: no such client."""
    row = conn.execute(
        text(
            "UPDATE api_clients SET revoked_at = coalesce(revoked_at, now()) "
            "WHERE tenant_id = :t AND id = :id RETURNING id"
        ),
        {"t": tenant_id, "id": client_id},
    ).first()
    return row is not None


def mark_api_client_used(conn: Connection, *, tenant_id: int, client_id: int) -> None:
    """Record use, at most once a minute so busy clients do not write on every call."""
    conn.execute(
        text(
            "UPDATE api_clients SET last_used_at = now() WHERE tenant_id = :t AND id = :id "
            "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
        ),
        {"t": tenant_id, "id": client_id},
    )


class ApiMessage(Frozen):
    """A message an API client sent under an external key."""

    id: int
    ticket_id: int
    contact_id: int
    request_sha256: str | None


def get_api_message(conn: Connection, *, tenant_id: int, external_key: str) -> ApiMessage | None:
    """The message sent under `external_key`, with the fingerprint of the request that sent it."""
    row = conn.execute(
        text(
            """
            SELECT m.id, m.ticket_id, m.contact_id, e.data->>'request_sha256'
            FROM messages m
            LEFT JOIN LATERAL (
                SELECT data FROM ticket_events
                WHERE tenant_id = m.tenant_id AND ticket_id = m.ticket_id
                  AND type = 'message_sent' AND data->>'message_id' = m.id::text
                LIMIT 1) e ON true
            WHERE m.tenant_id = :t AND m.external_key = :k
            """
        ),
        {"t": tenant_id, "k": external_key},
    ).first()
    if row is None:
        return None
    return ApiMessage(id=row[0], ticket_id=row[1], contact_id=row[2], request_sha256=row[3])


def mark_api_message(
    conn: Connection,
    *,
    tenant_id: int,
    message_id: int,
    api_client_id: int | None,
    external_key: str,
) -> None:
    """Tag a recorded message with its client and key. A concurrent send under the same key
    makes this raise IntegrityError (unique index messages_external_key)."""
    conn.execute(
        text(
            "UPDATE messages SET api_client_id = :c, external_key = :k "
            "WHERE tenant_id = :t AND id = :id"
        ),
        {"c": api_client_id, "k": external_key, "t": tenant_id, "id": message_id},
    )


def get_channel_type(conn: Connection, *, tenant_id: int, channel_id: int) -> str | None:
    """The type of one of the tenant's channels, or None."""
    value = conn.execute(
        text("SELECT type FROM channels WHERE tenant_id = :t AND id = :id"),
        {"t": tenant_id, "id": channel_id},
    ).scalar_one_or_none()
    return None if value is None else str(value)


class ContactAddress(Frozen):
    """How a known contact can be reached on one channel type."""

    contact_id: int
    phone: str | None
    external_id: str | None  # their identity on that channel type, if they have one


def get_contact_address(
    conn: Connection, *, tenant_id: int, contact_id: int, channel_type: str
) -> ContactAddress | None:
    """The tenant's contact with its newest identity on `channel_type`, or None."""
    row = conn.execute(
        text(
            """
            SELECT c.id, c.phone, ci.external_id
            FROM contacts c
            LEFT JOIN LATERAL (
                SELECT external_id FROM contact_identities
                WHERE tenant_id = c.tenant_id AND contact_id = c.id AND channel_type = :ct
                ORDER BY updated_at DESC LIMIT 1) ci ON true
            WHERE c.tenant_id = :t AND c.id = :id
            """
        ),
        {"t": tenant_id, "id": contact_id, "ct": channel_type},
    ).first()
    if row is None:
        return None
    return ContactAddress(contact_id=row[0], phone=row[1], external_id=row[2])


def lock_person(conn: Connection, key: int) -> None:
    """Wait for one person's advisory lock (the inbound pipeline's per-contact key), so an API
    send and an inbound message never create the same contact twice."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
