"""Contacts, tickets and messages as the inbound pipeline writes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, text

from engine.events import Frozen


class ContactRef(Frozen):
    id: int
    created: bool


def upsert_contact(
    conn: Connection,
    *,
    tenant_id: int,
    channel_type: str,
    identity_key: str,
    external_id: str,
    name: str | None,
    phone: str | None,
    email: str | None = None,
    is_group: bool = False,
) -> ContactRef:
    """Find the contact behind a channel identity, creating contact and identity if new.

    Idempotent; callers hold the contact's advisory lock, so no concurrent creator exists.
    A known phone number links a new channel identity to the existing contact.
    """
    row = conn.execute(
        text(
            "SELECT ci.contact_id, ci.external_id, c.name FROM contact_identities ci "
            "JOIN contacts c ON c.id = ci.contact_id "
            "WHERE ci.tenant_id = :t AND ci.channel_type = :ct AND ci.identity_key = :k"
        ),
        {"t": tenant_id, "ct": channel_type, "k": identity_key},
    ).first()
    if row is not None:
        contact_id, known_external, known_name = row
        if name and name != known_name:
            conn.execute(
                text("UPDATE contacts SET name = :n, updated_at = now() WHERE id = :id"),
                {"n": name, "id": contact_id},
            )
        if external_id != known_external:
            conn.execute(
                text(
                    "UPDATE contact_identities SET external_id = :e, updated_at = now() "
                    "WHERE tenant_id = :t AND channel_type = :ct AND identity_key = :k"
                ),
                {"e": external_id, "t": tenant_id, "ct": channel_type, "k": identity_key},
            )
        return ContactRef(id=contact_id, created=False)

    created = conn.execute(
        text(
            """
            WITH ins AS (
                INSERT INTO contacts (tenant_id, name, phone, email, is_group)
                VALUES (:t, :n, :p, :email, :g)
                ON CONFLICT (tenant_id, phone) WHERE phone IS NOT NULL DO NOTHING
                RETURNING id, true AS created)
            SELECT id, created FROM ins
            UNION ALL
            SELECT id, false FROM contacts WHERE tenant_id = :t AND phone = :p
            LIMIT 1
            """
        ),
        {"t": tenant_id, "n": name, "p": phone, "email": email, "g": is_group},
    ).one()
    conn.execute(
        text(
            "INSERT INTO contact_identities (tenant_id, contact_id, channel_type, identity_key, "
            "external_id) VALUES (:t, :c, :ct, :k, :e) ON CONFLICT DO NOTHING"
        ),
        {"t": tenant_id, "c": created[0], "ct": channel_type, "k": identity_key, "e": external_id},
    )
    return ContactRef(id=created[0], created=bool(created[1]))


class TicketRef(Frozen):
    id: int
    created: bool
    protocol: str


def find_or_create_ticket(
    conn: Connection, *, tenant_id: int, channel_id: int, contact_id: int, is_group: bool = False
) -> TicketRef:
    """The contact's live ticket on this channel, or a new pending one.

    INSERT … ON CONFLICT against the one-live-ticket index: two workers racing for the same
    contact get the same ticket, never two.
    """
    row = conn.execute(
        text(
            """
            INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol, is_group)
            VALUES (:t, :ch, :c, 'pending',
                    flowdesk_next_protocol(),
                    :g)
            ON CONFLICT (tenant_id, channel_id, contact_id) WHERE status IN ('pending', 'open')
            DO NOTHING
            RETURNING id, protocol
            """
        ),
        {"t": tenant_id, "ch": channel_id, "c": contact_id, "g": is_group},
    ).first()
    if row is not None:
        return TicketRef(id=row[0], created=True, protocol=row[1])
    found = conn.execute(
        text(
            "SELECT id, protocol FROM tickets WHERE tenant_id = :t AND channel_id = :ch "
            "AND contact_id = :c AND status IN ('pending', 'open')"
        ),
        {"t": tenant_id, "ch": channel_id, "c": contact_id},
    ).one()
    return TicketRef(id=found[0], created=False, protocol=found[1])


class NewInboundMessage(Frozen):
    """An inbound message row about to be written."""

    tenant_id: int
    ticket_id: int
    contact_id: int
    channel_id: int
    type: str
    body: str | None
    media_json: str
    location_json: str | None
    shared_contacts_json: str | None
    referral_json: str | None
    reply_id: str | None
    quoted_provider_message_id: str | None
    provider_message_id: str
    provider_timestamp: datetime
    error_code: str | None
    error_message: str | None
    author_external_id: str | None = None
    author_name: str | None = None
    subject: str | None = None
    thread_ids: list[str] = []
    story_url: str | None = None


def insert_ticket_event(
    conn: Connection, *, tenant_id: int, ticket_id: int, type: str, data: dict[str, object]
) -> None:
    """Append to the ticket's audit trail."""
    conn.execute(
        text(
            "INSERT INTO ticket_events (tenant_id, ticket_id, type, data) "
            "VALUES (:t, :id, :type, CAST(:data AS jsonb))"
        ),
        {"t": tenant_id, "id": ticket_id, "type": type, "data": json.dumps(data)},
    )


def get_message_by_provider_id(
    conn: Connection, *, channel_id: int, provider_message_id: str
) -> tuple[int, int] | None:
    """(message id, ticket id) of a stored message, by the provider's id."""
    row = conn.execute(
        text(
            "SELECT id, ticket_id FROM messages WHERE channel_id = :c AND provider_message_id = :p"
        ),
        {"c": channel_id, "p": provider_message_id},
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def upsert_reaction(
    conn: Connection,
    *,
    tenant_id: int,
    message_id: int,
    contact_id: int,
    emoji: str | None,
    at: datetime,
) -> bool:
    """Set or remove a contact's reaction; a reaction older than the stored one changes nothing.

    Returns whether anything changed.
    """
    if emoji is None:
        result = conn.execute(
            text(
                "DELETE FROM message_reactions WHERE message_id = :m AND contact_id = :c "
                "AND provider_timestamp <= :at"
            ),
            {"m": message_id, "c": contact_id, "at": at},
        )
        return result.rowcount > 0
    result = conn.execute(
        text(
            """
            INSERT INTO message_reactions (tenant_id, message_id, contact_id, emoji,
                                           provider_timestamp)
            VALUES (:t, :m, :c, :e, :at)
            ON CONFLICT (message_id, contact_id) DO UPDATE
              SET emoji = EXCLUDED.emoji, provider_timestamp = EXCLUDED.provider_timestamp
              WHERE message_reactions.provider_timestamp <= EXCLUDED.provider_timestamp
            """
        ),
        {"t": tenant_id, "m": message_id, "c": contact_id, "e": emoji, "at": at},
    )
    return result.rowcount > 0


def get_contact_by_identity(
    conn: Connection, *, tenant_id: int, channel_type: str, identity_key: str
) -> int | None:
    """The contact behind a channel identity, without creating anything."""
    row = conn.execute(
        text(
            "SELECT contact_id FROM contact_identities "
            "WHERE tenant_id = :t AND channel_type = :ct AND identity_key = :k"
        ),
        {"t": tenant_id, "ct": channel_type, "k": identity_key},
    ).first()
    return None if row is None else int(row[0])


def apply_edit(
    conn: Connection, *, channel_id: int, provider_message_id: str, body: str | None, at: datetime
) -> tuple[int, int] | None:
    """Replace an inbound message's text; an older edit never overwrites a newer one.

    Returns (message id, ticket id) when something changed.
    """
    row = conn.execute(
        text(
            """
            UPDATE messages SET body = :body, edited_at = :at
            WHERE channel_id = :c AND provider_message_id = :p AND direction = 'in'
              AND deleted_at IS NULL AND (edited_at IS NULL OR edited_at < :at)
            RETURNING id, ticket_id
            """
        ),
        {"c": channel_id, "p": provider_message_id, "body": body, "at": at},
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def apply_delete(
    conn: Connection, *, channel_id: int, provider_message_id: str, at: datetime
) -> tuple[int, int] | None:
    """The customer unsent a message: drop its content, keep the fact (idempotent)."""
    row = conn.execute(
        text(
            """
            UPDATE messages SET body = NULL, media = '[]'::jsonb, location = NULL,
                shared_contacts = NULL, deleted_at = :at
            WHERE channel_id = :c AND provider_message_id = :p AND direction = 'in'
              AND deleted_at IS NULL
            RETURNING id, ticket_id
            """
        ),
        {"c": channel_id, "p": provider_message_id, "at": at},
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def update_contact_flags(
    conn: Connection, *, contact_id: int, unreachable: bool | None, opted_out: bool | None
) -> bool:
    """Record that a contact blocked/unblocked us or opted out/in. Returns whether it changed."""
    result = conn.execute(
        text(
            """
            UPDATE contacts SET unreachable = coalesce(:u, unreachable),
                opted_out = coalesce(:o, opted_out), updated_at = now()
            WHERE id = :id AND (unreachable IS DISTINCT FROM coalesce(:u, unreachable)
                                OR opted_out IS DISTINCT FROM coalesce(:o, opted_out))
            """
        ),
        {"id": contact_id, "u": unreachable, "o": opted_out},
    )
    return result.rowcount > 0


_TRY_LOCKS = text(
    "SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k WHERE pg_try_advisory_xact_lock(k)"
)


def try_lock_contact_keys(conn: Connection, keys: Sequence[int]) -> set[int]:
    """Take whichever of these per-person locks are free, without waiting; return those taken.

    Waiting would serialise every batch that shares one person with another; the caller
    defers the work of people another transaction is busy with instead.
    """
    if not keys:
        return set()
    rows = conn.execute(_TRY_LOCKS, {"keys": sorted(set(keys))}).all()
    return {int(r[0]) for r in rows}


class KnownIdentity(Frozen):
    contact_id: int
    external_id: str
    name: str | None


_KNOWN_IDENTITIES = text(
    """
    SELECT ci.channel_type, ci.identity_key, ci.contact_id, ci.external_id, c.name
    FROM contact_identities ci JOIN contacts c ON c.id = ci.contact_id
    WHERE ci.tenant_id = :t AND (ci.channel_type, ci.identity_key) IN (
        SELECT * FROM unnest(CAST(:types AS text[]), CAST(:keys AS text[])))
    """
)


def get_known_identities(
    conn: Connection, *, tenant_id: int, identities: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], KnownIdentity]:
    """Contacts behind many (channel type, identity key) pairs in one round trip."""
    if not identities:
        return {}
    rows = conn.execute(
        _KNOWN_IDENTITIES,
        {"t": tenant_id, "types": [i[0] for i in identities], "keys": [i[1] for i in identities]},
    ).all()
    return {(r[0], r[1]): KnownIdentity(contact_id=r[2], external_id=r[3], name=r[4]) for r in rows}


def refresh_identity(
    conn: Connection,
    *,
    tenant_id: int,
    channel_type: str,
    identity_key: str,
    known: KnownIdentity,
    external_id: str,
    name: str | None,
) -> None:
    """Keep a known contact's name and provider address current (writes only on change)."""
    if name and name != known.name:
        conn.execute(
            text("UPDATE contacts SET name = :n, updated_at = now() WHERE id = :id"),
            {"n": name, "id": known.contact_id},
        )
    if external_id != known.external_id:
        conn.execute(
            text(
                "UPDATE contact_identities SET external_id = :e, updated_at = now() "
                "WHERE tenant_id = :t AND channel_type = :ct AND identity_key = :k"
            ),
            {"e": external_id, "t": tenant_id, "ct": channel_type, "k": identity_key},
        )


_STORED_IDS = text(
    """
    SELECT channel_id, provider_message_id FROM messages
    WHERE (channel_id, provider_message_id) IN (
        SELECT * FROM unnest(CAST(:channels AS bigint[]), CAST(:ids AS text[])))
    """
)


def get_stored_provider_ids(
    conn: Connection, pairs: Sequence[tuple[int, str]]
) -> set[tuple[int, str]]:
    """Which (channel, provider message id) pairs are stored already, in one round trip."""
    if not pairs:
        return set()
    rows = conn.execute(
        _STORED_IDS, {"channels": [p[0] for p in pairs], "ids": [p[1] for p in pairs]}
    ).all()
    return {(int(r[0]), str(r[1])) for r in rows}


_LIVE_TICKETS = text(
    """
    SELECT channel_id, contact_id, id, protocol FROM tickets
    WHERE tenant_id = :t AND status IN ('pending', 'open') AND (channel_id, contact_id) IN (
        SELECT * FROM unnest(CAST(:channels AS bigint[]), CAST(:contacts AS bigint[])))
    """
)


def get_live_tickets(
    conn: Connection, *, tenant_id: int, pairs: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], TicketRef]:
    """Live tickets of many (channel, contact) pairs in one round trip."""
    if not pairs:
        return {}
    rows = conn.execute(
        _LIVE_TICKETS,
        {"t": tenant_id, "channels": [p[0] for p in pairs], "contacts": [p[1] for p in pairs]},
    ).all()
    return {(int(r[0]), int(r[1])): TicketRef(id=r[2], created=False, protocol=r[3]) for r in rows}


# The whole batch's messages in one statement: rows arrive as one JSON array (field `i` is
# the row's place in the batch). A provider id seen twice (within the batch or stored before)
# is inserted once; each ticket is counted once with the number of its new messages.
_STORE_INBOUND_BATCH = text(
    """
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
            i int, tenant_id bigint, ticket_id bigint, contact_id bigint, channel_id bigint,
            type text, body text, media_json text, location_json text,
            shared_contacts_json text, referral_json text, reply_id text,
            quoted_provider_message_id text, provider_message_id text,
            provider_timestamp timestamptz, error_code text, error_message text,
            author_external_id text, author_name text, subject text, thread_ids text[],
            story_url text)),
    ins AS (
        INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, type,
            body, media, location, shared_contacts, referral, reply_id, quoted_message_id,
            quoted_provider_message_id, provider_message_id, provider_timestamp, status,
            status_at, error_code, error_message, author_external_id, author_name, subject,
            thread_ids, story_url)
        SELECT tenant_id, ticket_id, contact_id, channel_id, 'in', type, body,
            CAST(media_json AS jsonb), CAST(location_json AS jsonb),
            CAST(shared_contacts_json AS jsonb), CAST(referral_json AS jsonb), reply_id,
            (SELECT q.id FROM messages q WHERE q.channel_id = input.channel_id
               AND q.provider_message_id = input.quoted_provider_message_id),
            quoted_provider_message_id, provider_message_id, provider_timestamp, 'received',
            provider_timestamp, error_code, error_message, author_external_id, author_name,
            subject, coalesce(thread_ids, '{}'), story_url
        FROM input ORDER BY i
        ON CONFLICT (channel_id, provider_message_id) WHERE provider_message_id IS NOT NULL
        DO NOTHING
        RETURNING id, ticket_id, tenant_id, contact_id, channel_id, type, provider_message_id,
            provider_timestamp),
    counted AS (
        UPDATE tickets t SET unread_count = t.unread_count + c.n, answered = false,
            last_message_at = greatest(t.last_message_at, c.at),
            last_inbound_at = greatest(t.last_inbound_at, c.at), updated_at = now()
        FROM (SELECT ticket_id, count(*) AS n, max(provider_timestamp) AS at
              FROM ins GROUP BY ticket_id) c
        WHERE t.id = c.ticket_id),
    audited AS (
        INSERT INTO ticket_events (tenant_id, ticket_id, type, data)
        SELECT tenant_id, ticket_id, 'message_received', jsonb_build_object('message_id', id)
        FROM ins ORDER BY id),
    announced AS (
        INSERT INTO outbox (tenant_id, topic, payload)
        SELECT tenant_id, 'message.created', jsonb_build_object(
            'message_id', id, 'ticket_id', ticket_id, 'contact_id', contact_id,
            'direction', 'in', 'type', type)
        FROM ins ORDER BY id
        RETURNING id, CAST(payload->>'message_id' AS bigint) AS message_id)
    SELECT ins.id, ins.channel_id, ins.provider_message_id, announced.id
    FROM ins JOIN announced ON announced.message_id = ins.id
    ORDER BY ins.id
    """
)


_LINK_QUOTES = text(
    """
    UPDATE messages m SET quoted_message_id = q.id
    FROM messages q
    WHERE m.id = ANY(:ids) AND m.quoted_message_id IS NULL
      AND q.channel_id = m.channel_id AND q.provider_message_id = m.quoted_provider_message_id
    """
)


def store_inbound_messages(
    conn: Connection, msgs: Sequence[NewInboundMessage]
) -> list[tuple[int, int] | None]:
    """Insert new inbound messages, count them on their tickets, audit and announce them, in
    one round trip; (message id, outbox id) per message, in input order.

    A message whose provider id was stored before, or appears earlier in `msgs`, gets None.
    """
    if not msgs:
        return []
    rows = [{"i": i, **m.model_dump(mode="json")} for i, m in enumerate(msgs)]
    stored = {
        (int(r[1]), str(r[2])): (int(r[0]), int(r[3]))
        for r in conn.execute(_STORE_INBOUND_BATCH, {"rows": json.dumps(rows)})
    }
    out: list[tuple[int, int] | None] = []
    for m in msgs:  # the first of several rows with one provider id is the one stored
        out.append(stored.pop((m.channel_id, m.provider_message_id), None))
    # A statement does not see its own inserts, so a reply quoting a message of the same
    # batch is linked in a second one (rare: only when the batch holds both).
    in_batch = {(m.channel_id, m.provider_message_id) for m in msgs}
    if any((m.channel_id, m.quoted_provider_message_id) in in_batch for m in msgs):
        conn.execute(_LINK_QUOTES, {"ids": [r[0] for r in out if r is not None]})
    return out


_TICKETS_CREATED = text(
    """
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
            AS r(i int, tenant_id bigint, ticket_id bigint, contact_id bigint, protocol text)),
    audited AS (
        INSERT INTO ticket_events (tenant_id, ticket_id, type, data)
        SELECT tenant_id, ticket_id, 'created', jsonb_build_object(
            'status', 'pending', 'protocol', protocol, 'source', 'inbound')
        FROM input ORDER BY i)
    INSERT INTO outbox (tenant_id, topic, payload)
    SELECT tenant_id, 'ticket.created', jsonb_build_object(
        'ticket_id', ticket_id, 'contact_id', contact_id, 'status', 'pending')
    FROM input ORDER BY i
    RETURNING id
    """
)


class CreatedTicket(Frozen):
    tenant_id: int
    ticket_id: int
    contact_id: int
    protocol: str


def record_tickets_created(conn: Connection, tickets: Sequence[CreatedTicket]) -> list[int]:
    """The `created` ticket event and `ticket.created` outbox row of each new ticket, in one
    round trip; the outbox ids."""
    if not tickets:
        return []
    rows = [{"i": i, **t.model_dump()} for i, t in enumerate(tickets)]
    return [int(r[0]) for r in conn.execute(_TICKETS_CREATED, {"rows": json.dumps(rows)})]
