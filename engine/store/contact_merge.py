"""Merging two contacts that are one person: everything of the source moves to the target."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, text

from engine.events import Frozen
from engine.store.outbox import insert_outbox


class MergeSide(Frozen):
    """A contact about to be merged, as locked for the merge."""

    id: int
    name: str | None
    phone: str | None
    email: str | None
    is_group: bool
    opted_out: bool
    merged_into_id: int | None


class PersonKeys(Frozen):
    """What names the people behind some contacts: (channel type, identity key) and phones."""

    identities: tuple[tuple[str, str], ...]
    phones: tuple[str, ...]


class MergeOutcome(Frozen):
    moved_identities: int
    moved_tickets: tuple[int, ...]
    moved_messages: int
    closed_ticket_ids: tuple[int, ...]
    outbox_id: int


def get_person_keys(conn: Connection, *, tenant_id: int, contact_ids: Sequence[int]) -> PersonKeys:
    """The identities and phone numbers of these contacts (no locks taken)."""
    params = {"t": tenant_id, "ids": list(contact_ids)}
    identities = conn.execute(
        text(
            "SELECT channel_type, identity_key FROM contact_identities "
            "WHERE tenant_id = :t AND contact_id = ANY(:ids)"
        ),
        params,
    ).all()
    phones = conn.execute(
        text(
            "SELECT phone FROM contacts WHERE tenant_id = :t AND id = ANY(:ids) "
            "AND phone IS NOT NULL"
        ),
        params,
    ).all()
    return PersonKeys(
        identities=tuple((str(r[0]), str(r[1])) for r in identities),
        phones=tuple(str(r[0]) for r in phones),
    )


def lock_people(conn: Connection, keys: Sequence[int]) -> None:
    """Wait for the inbound pipeline's per-person locks, in sorted order (no deadlock).

    Held to commit: no batch of these people runs while they are being merged.
    """
    for key in sorted(set(keys)):
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def lock_merge_sides(
    conn: Connection, *, tenant_id: int, contact_ids: Sequence[int]
) -> dict[int, MergeSide]:
    """Lock both contacts (in id order) and return them by id; a missing id is left out."""
    rows = conn.execute(
        text(
            "SELECT id, name, phone, email, is_group, opted_out, merged_into_id FROM contacts "
            "WHERE tenant_id = :t AND id = ANY(:ids) ORDER BY id FOR UPDATE"
        ),
        {"t": tenant_id, "ids": list(contact_ids)},
    ).mappings()
    return {int(r["id"]): MergeSide.model_validate(dict(r)) for r in rows}


def merge_contacts(
    conn: Connection, *, tenant_id: int, target: MergeSide, source: MergeSide, user_id: int
) -> MergeOutcome:
    """Move identities, tickets, messages, reactions, campaign sends, tags, custom fields and
    the wallet from `source` to `target`; mark `source` merged and free its phone.

    Where both have a live ticket on one channel, the source's is closed first (one live
    ticket per contact and channel). The target wins every conflict (custom field names,
    wallet); it takes the source's name, phone and e-mail only where it has none. Records
    ticket events and one `contact.updated` outbox row. Callers hold both contacts' row
    locks (`lock_merge_sides`) and the people's locks (`lock_people`). Not idempotent: a
    second call finds the source merged (callers refuse that).
    """
    p = {"t": tenant_id, "s": source.id, "target": target.id, "u": user_id}
    conn.execute(
        text(
            "SELECT id FROM tickets WHERE tenant_id = :t AND contact_id IN (:s, :target) "
            "ORDER BY id FOR UPDATE"
        ),
        p,
    )
    closed = _close_clashing_tickets(conn, p)
    moved = [
        int(r[0])
        for r in conn.execute(
            text(
                "UPDATE tickets SET contact_id = :target, updated_at = now() "
                "WHERE tenant_id = :t AND contact_id = :s RETURNING id"
            ),
            p,
        )
    ]
    moved.sort()
    _ticket_events(conn, p, moved, "contact_merged", from_contact_id=source.id)
    messages = conn.execute(
        text("UPDATE messages SET contact_id = :target WHERE tenant_id = :t AND contact_id = :s"),
        p,
    ).rowcount
    _move_dependents(conn, p)
    identities = conn.execute(
        text(
            "UPDATE contact_identities SET contact_id = :target, updated_at = now() "
            "WHERE tenant_id = :t AND contact_id = :s"
        ),
        p,
    ).rowcount
    _retire_source(conn, p, source)
    outbox_id = insert_outbox(
        conn,
        tenant_id=tenant_id,
        topic="contact.updated",
        payload={
            "contact_id": target.id,
            "merged_contact_id": source.id,
            "ticket_ids": moved,
            "closed_ticket_ids": closed,
        },
    )
    return MergeOutcome(
        moved_identities=identities,
        moved_tickets=tuple(moved),
        moved_messages=messages,
        closed_ticket_ids=tuple(closed),
        outbox_id=outbox_id,
    )


def _close_clashing_tickets(conn: Connection, p: dict[str, int]) -> list[int]:
    """Close each live source ticket whose channel also has a live target ticket."""
    rows = conn.execute(
        text(
            """
            UPDATE tickets s SET status = 'closed', closed_at = now(), updated_at = now()
            FROM tickets x
            WHERE s.tenant_id = :t AND s.contact_id = :s AND s.status IN ('pending', 'open')
              AND x.tenant_id = :t AND x.contact_id = :target AND x.channel_id = s.channel_id
              AND x.status IN ('pending', 'open')
            RETURNING s.id, x.id
            """
        ),
        p,
    ).all()
    for closed_id, kept_id in rows:
        _ticket_events(
            conn, p, [closed_id], "closed", reason="contact_merged", live_ticket_id=kept_id
        )
    return sorted(int(r[0]) for r in rows)


def _ticket_events(
    conn: Connection, p: dict[str, int], ticket_ids: list[int], type: str, **data: object
) -> None:
    if not ticket_ids:
        return
    conn.execute(
        text(
            "INSERT INTO ticket_events (tenant_id, ticket_id, type, user_id, data) "
            "SELECT :t, x, :type, :u, CAST(:data AS jsonb) "
            "FROM unnest(CAST(:ids AS bigint[])) AS x"
        ),
        {**p, "ids": ticket_ids, "type": type, "data": json.dumps(data)},
    )


# Rows keyed by contact that may already exist for the target: the target's copy wins and
# the source's is dropped; the rest move.
_DEPENDENTS = (
    "DELETE FROM message_reactions r WHERE r.tenant_id = :t AND r.contact_id = :s AND EXISTS ("
    " SELECT 1 FROM message_reactions x WHERE x.message_id = r.message_id"
    " AND x.contact_id = :target)",
    "UPDATE message_reactions SET contact_id = :target WHERE tenant_id = :t AND contact_id = :s",
    # A campaign that reached both keeps the source's row: it records a send that happened.
    "UPDATE campaign_contacts c SET contact_id = :target WHERE c.tenant_id = :t"
    " AND c.contact_id = :s AND NOT EXISTS (SELECT 1 FROM campaign_contacts x"
    " WHERE x.campaign_id = c.campaign_id AND x.contact_id = :target)",
    "INSERT INTO contact_tags (tenant_id, contact_id, tag_id)"
    " SELECT :t, :target, tag_id FROM contact_tags WHERE tenant_id = :t AND contact_id = :s"
    " ON CONFLICT (contact_id, tag_id) DO NOTHING",
    "DELETE FROM contact_tags WHERE tenant_id = :t AND contact_id = :s",
    "INSERT INTO contact_custom_fields (tenant_id, contact_id, name, value)"
    " SELECT :t, :target, name, value FROM contact_custom_fields"
    " WHERE tenant_id = :t AND contact_id = :s ON CONFLICT (contact_id, name) DO NOTHING",
    "DELETE FROM contact_custom_fields WHERE tenant_id = :t AND contact_id = :s",
    "INSERT INTO wallets (tenant_id, contact_id, user_id)"
    " SELECT :t, :target, user_id FROM wallets WHERE tenant_id = :t AND contact_id = :s"
    " ON CONFLICT (contact_id) DO NOTHING",
    "DELETE FROM wallets WHERE tenant_id = :t AND contact_id = :s",
    # Contacts merged into the source earlier now point at where everything went.
    "UPDATE contacts SET merged_into_id = :target WHERE tenant_id = :t AND merged_into_id = :s",
)


def _move_dependents(conn: Connection, p: dict[str, int]) -> None:
    for sql in _DEPENDENTS:
        conn.execute(text(sql), p)


def _retire_source(conn: Connection, p: dict[str, int], source: MergeSide) -> None:
    """Mark the source merged and free its phone first, so the target may take it over."""
    conn.execute(
        text(
            "UPDATE contacts SET merged_into_id = :target, phone = NULL, updated_at = now() "
            "WHERE tenant_id = :t AND id = :s"
        ),
        p,
    )
    conn.execute(
        text(
            "UPDATE contacts SET name = coalesce(name, :name), phone = coalesce(phone, :phone), "
            "email = coalesce(email, :email), opted_out = opted_out OR :opted_out, "
            "updated_at = now() WHERE tenant_id = :t AND id = :target"
        ),
        {
            **p,
            "name": source.name,
            "phone": source.phone,
            "email": source.email,
            "opted_out": source.opted_out,
        },
    )
