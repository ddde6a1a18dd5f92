"""What the demo left on each channel of its tenant, and what became of the agent's replies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, text

from engine.db import system_tx


@dataclass(frozen=True)
class ChannelSeen:
    contacts: int
    tickets: int
    messages_in: int
    messages_out: int
    outbound: dict[str, int]  # delivery status -> outbound messages in it
    inbound_ids: frozenset[str]  # provider ids of the stored inbound messages


@dataclass(frozen=True)
class SentRow:
    """An outbound message as the engine has it now."""

    status: str
    error_code: str | None
    error_message: str | None
    attempts: int
    provider_message_id: str | None


@dataclass(frozen=True)
class ReplyDeadLetter:
    error_class: str
    reason: str
    attempts: int


def count_tenant_inbox(db: Engine, tenant_id: int) -> tuple[int, int]:
    """(rows done, rows stored) of the tenant's inbox, every channel; done = no longer pending."""
    with system_tx(db) as conn:
        row = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) "
                "FROM inbox WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        ).one()
    return int(row[0]), int(row[1])


def find_message(db: Engine, channel_id: int, provider_message_id: str) -> tuple[int, int] | None:
    """(message id, ticket id) of the message a provider knows by `provider_message_id`."""
    with system_tx(db) as conn:
        row = conn.execute(
            text(
                "SELECT id, ticket_id FROM messages "
                "WHERE channel_id = :c AND provider_message_id = :p"
            ),
            {"c": channel_id, "p": provider_message_id},
        ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def observe_channels(db: Engine, tenant_id: int) -> dict[int, ChannelSeen]:
    """Per channel id: contacts and tickets, messages each way, outbound statuses."""
    ids = {"t": tenant_id}
    tickets: dict[int, tuple[int, int]] = {}
    counts: defaultdict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    inbound: defaultdict[int, set[str]] = defaultdict(set)
    with system_tx(db) as conn:
        for r in conn.execute(
            text(
                "SELECT channel_id, count(DISTINCT contact_id), count(*) FROM tickets "
                "WHERE tenant_id = :t GROUP BY channel_id"
            ),
            ids,
        ):
            tickets[int(r[0])] = (int(r[1]), int(r[2]))
        for r in conn.execute(
            text(
                "SELECT channel_id, direction, status, count(*) FROM messages "
                "WHERE tenant_id = :t GROUP BY 1, 2, 3"
            ),
            ids,
        ):
            counts[int(r[0])][(str(r[1]), str(r[2]))] = int(r[3])
        for r in conn.execute(
            text(
                "SELECT channel_id, provider_message_id FROM messages "
                "WHERE tenant_id = :t AND direction = 'in'"
            ),
            ids,
        ):
            inbound[int(r[0])].add(str(r[1]))
    seen = {}
    for channel_id in tickets.keys() | counts.keys():
        by = counts[channel_id]
        contacts, ticket_count = tickets.get(channel_id, (0, 0))
        seen[channel_id] = ChannelSeen(
            contacts=contacts,
            tickets=ticket_count,
            messages_in=sum(n for (d, _), n in by.items() if d == "in"),
            messages_out=sum(n for (d, _), n in by.items() if d == "out"),
            outbound=_by_rank({s: n for (d, s), n in by.items() if d == "out"}),
            inbound_ids=frozenset(inbound[channel_id]),
        )
    return seen


_STATUS_ORDER = ("pending", "sent", "delivered", "read", "failed")


def _by_rank(statuses: dict[str, int]) -> dict[str, int]:
    """Statuses in the order a message moves through them."""
    rank = {s: i for i, s in enumerate(_STATUS_ORDER)}
    return {s: statuses[s] for s in sorted(statuses, key=lambda s: rank.get(s, len(rank)))}


def observe_replies(db: Engine, message_ids: Sequence[int]) -> dict[int, SentRow]:
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT id, status, error_code, error_message, send_attempts, provider_message_id "
                "FROM messages WHERE id = ANY(:ids)"
            ),
            {"ids": list(message_ids)},
        )
        return {int(r[0]): SentRow(str(r[1]), r[2], r[3], int(r[4]), r[5]) for r in rows}


def reply_dead_letters(db: Engine, message_ids: Sequence[int]) -> dict[int, ReplyDeadLetter]:
    """Dead letters of the send actor for these messages, found by the actor's argument."""
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT (payload->'args'->>0)::bigint, error_class, error_message, attempts "
                "FROM dead_letters WHERE actor = 'send_message' "
                "AND payload->'args'->>0 = ANY(:ids) ORDER BY id"
            ),
            {"ids": [str(i) for i in message_ids]},
        )
        return {int(r[0]): ReplyDeadLetter(str(r[1]), str(r[2]), int(r[3])) for r in rows}


def count_quoting(db: Engine, message_id: int) -> int:
    """Inbound messages on the same ticket that quote (answer) message `message_id`."""
    with system_tx(db) as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM messages a JOIN messages q ON q.id = a.quoted_message_id "
                    "WHERE q.id = :id AND a.direction = 'in' AND a.ticket_id = q.ticket_id"
                ),
                {"id": message_id},
            ).scalar_one()
        )
