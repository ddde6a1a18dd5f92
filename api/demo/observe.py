"""What the demo's WhatsApp traffic left in the database, read for its tenant and channel only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from engine.db import system_tx

INBOX_STATUSES = ("pending", "processed", "partial", "ignored", "dead")


@dataclass(frozen=True)
class ContactRow:
    name: str | None
    phone: str | None
    messages: int
    ticket: str | None
    ticket_status: str | None
    unread: int


@dataclass(frozen=True)
class DeadLetterRow:
    actor: str
    error_class: str
    reason: str


@dataclass(frozen=True)
class Observed:
    inbox: dict[str, int]
    notices: tuple[str, ...]
    contacts: tuple[ContactRow, ...]
    tickets: dict[str, tuple[int, int]]  # status -> (tickets, unread messages)
    messages_by_type: dict[str, int]
    stored_wamids: frozenset[str]
    quoting_stored: int  # replies whose quoted message was found
    quoting_business: int  # replies to business messages this engine has not stored
    statuses: dict[str, tuple[int, int]]  # status -> (recorded, waiting for their message)
    reactions: tuple[str, ...]
    dead_letters: tuple[DeadLetterRow, ...]
    brazil_contacts: int


def observe(
    db: Engine, *, tenant_id: int, channel_id: int, brazil_wamids: Sequence[str]
) -> Observed:
    """Everything the summary reports, in one system-scoped read transaction."""
    ids = {"t": tenant_id, "c": channel_id}
    with system_tx(db) as conn:
        return Observed(
            inbox=dict.fromkeys(INBOX_STATUSES, 0)
            | _counts(conn, "SELECT status, count(*) FROM inbox WHERE channel_id = :c", ids),
            notices=tuple(
                str(r[0])
                for r in conn.execute(
                    text(
                        "SELECT note FROM inbox WHERE channel_id = :c AND note IS NOT NULL "
                        "ORDER BY id"
                    ),
                    ids,
                )
            ),
            contacts=_contacts(conn, ids),
            tickets={
                str(r[0]): (int(r[1]), int(r[2]))
                for r in conn.execute(
                    text(
                        "SELECT status, count(*), sum(unread_count) FROM tickets "
                        "WHERE channel_id = :c GROUP BY status ORDER BY status"
                    ),
                    ids,
                )
            },
            messages_by_type=_counts(
                conn,
                "SELECT type, count(*) FROM messages WHERE channel_id = :c AND direction = 'in'",
                ids,
            ),
            stored_wamids=frozenset(
                str(r[0])
                for r in conn.execute(
                    text(
                        "SELECT provider_message_id FROM messages "
                        "WHERE channel_id = :c AND direction = 'in'"
                    ),
                    ids,
                )
            ),
            quoting_stored=_scalar(
                conn,
                "SELECT count(*) FROM messages WHERE channel_id = :c "
                "AND quoted_message_id IS NOT NULL",
                ids,
            ),
            quoting_business=_scalar(
                conn,
                "SELECT count(*) FROM messages WHERE channel_id = :c "
                "AND quoted_provider_message_id IS NOT NULL AND quoted_message_id IS NULL",
                ids,
            ),
            statuses={
                str(r[0]): (int(r[1]), int(r[2]))
                for r in conn.execute(
                    text(
                        "SELECT status, count(*), count(*) FILTER (WHERE message_id IS NULL) "
                        "FROM message_status_events WHERE channel_id = :c GROUP BY status "
                        "ORDER BY array_position(ARRAY['sent','delivered','read','failed'], status)"
                    ),
                    ids,
                )
            },
            reactions=tuple(
                str(r[0])
                for r in conn.execute(
                    text(
                        "SELECT r.emoji FROM message_reactions r "
                        "JOIN messages m ON m.id = r.message_id WHERE m.channel_id = :c"
                    ),
                    ids,
                )
            ),
            dead_letters=tuple(
                DeadLetterRow(str(r[0]), str(r[1]), str(r[2]))
                for r in conn.execute(
                    text(
                        "SELECT actor, error_class, error_message FROM dead_letters "
                        "WHERE tenant_id = :t ORDER BY id"
                    ),
                    ids,
                )
            ),
            brazil_contacts=_scalar(
                conn,
                "SELECT count(DISTINCT contact_id) FROM messages "
                "WHERE channel_id = :c AND provider_message_id = ANY(:ids)",
                {**ids, "ids": list(brazil_wamids)},
            ),
        )


def _contacts(conn: Connection, ids: dict[str, int]) -> tuple[ContactRow, ...]:
    rows = conn.execute(
        text(
            """
            SELECT c.name, c.phone,
                   (SELECT count(*) FROM messages m WHERE m.contact_id = c.id
                      AND m.channel_id = :c),
                   t.protocol, t.status, coalesce(t.unread_count, 0)
            FROM contacts c
            LEFT JOIN tickets t ON t.contact_id = c.id AND t.channel_id = :c
            WHERE c.tenant_id = :t AND EXISTS (
                SELECT 1 FROM contact_identities ci
                WHERE ci.contact_id = c.id AND ci.channel_type = 'whatsapp')
            ORDER BY c.id
            """
        ),
        ids,
    )
    return tuple(ContactRow(r[0], r[1], int(r[2]), r[3], r[4], int(r[5])) for r in rows)


def _counts(conn: Connection, sql: str, params: dict[str, int]) -> dict[str, int]:
    """`sql` selects (key, count) rows; grouped here by the first column, biggest first."""
    rows = conn.execute(text(f"{sql} GROUP BY 1 ORDER BY 2 DESC, 1"), params)
    return {str(r[0]): int(r[1]) for r in rows}


def _scalar(conn: Connection, sql: str, params: Mapping[str, object]) -> int:
    return int(conn.execute(text(sql), params).scalar_one())
