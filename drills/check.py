"""After a drill: wait until the engine has settled, then compare the database with what was
accepted. Lost = accepted but absent; duplicated = any effect held more than once."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from bench import infra
from drills.stack import DrillServices
from drills.workload import Effect

SETTLE_TIMEOUT_S = 240.0

# Each query counts the surplus rows of one promise "one X per Y".
DUPLICATE_QUERIES = {
    "messages per provider id": """
        SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM messages
        WHERE provider_message_id IS NOT NULL GROUP BY channel_id, provider_message_id) g""",
    "live tickets per contact": """
        SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM tickets
        WHERE status IN ('pending', 'open') GROUP BY tenant_id, channel_id, contact_id) g""",
    "contacts per phone": """
        SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM contacts
        WHERE phone IS NOT NULL GROUP BY tenant_id, phone) g""",
    "statuses per message": """
        SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM message_status_events
        GROUP BY channel_id, provider_message_id, status) g""",
}


@dataclass(frozen=True)
class Tally:
    applied: int
    lost: int
    duplicated: int
    lost_examples: tuple[str, ...] = ()
    duplicate_kinds: tuple[str, ...] = ()


# A status is applied once recorded and its message has reached it (statuses only move forward,
# so a late `sent` after `read` leaves `read`).
_APPLIED_STATUSES = """
    SELECT e.provider_message_id, e.status FROM message_status_events e
    JOIN messages m ON m.channel_id = e.channel_id
        AND m.provider_message_id = e.provider_message_id AND m.direction = 'out'
    WHERE array_position(ARRAY['pending','sent','delivered','read'], m.status)
        >= array_position(ARRAY['pending','sent','delivered','read'], e.status)
"""


def seed_outbound(services: DrillServices, channel_id: int, provider_ids: list[str]) -> None:
    """Outbound messages, already handed to the provider, whose statuses the workload carries:
    one contact (not among the senders) and a closed ticket hold them all."""
    with psycopg.connect(services.dsn(), autocommit=True) as conn:
        conn.execute(
            """
            WITH channel AS (SELECT tenant_id, id FROM channels WHERE id = %(ch)s),
            contact AS (INSERT INTO contacts (tenant_id, name, phone)
                SELECT tenant_id, 'Drill recipient', '+5511900000000' FROM channel RETURNING *),
            ticket AS (INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol)
                SELECT c.tenant_id, %(ch)s, c.id, 'closed', 'DRILL-OUT' FROM contact c
                RETURNING *)
            INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, type,
                body, status, provider_message_id)
            SELECT t.tenant_id, t.id, t.contact_id, %(ch)s, 'out', 'text', 'Pedido enviado',
                'pending', p
            FROM ticket t, unnest(%(ids)s::text[]) AS p
            """,
            {"ch": channel_id, "ids": provider_ids},
        )


def applied_effects(services: DrillServices) -> set[Effect]:
    messages = infra.rows(
        services,
        "SELECT provider_message_id FROM messages "
        "WHERE direction = 'in' AND provider_message_id IS NOT NULL",
    )
    statuses = infra.rows(services, _APPLIED_STATUSES)
    return {("message", str(r[0])) for r in messages} | {
        ("status", str(r[0]), str(r[1])) for r in statuses
    }


def pending_inbox(services: DrillServices) -> int:
    return infra.scalar(services, "SELECT count(*) FROM inbox WHERE status = 'pending'")


def processed_inbox(services: DrillServices) -> int | None:
    """Inbox rows finished so far, or None while the database cannot be reached."""
    try:
        return infra.scalar(services, "SELECT count(*) FROM inbox WHERE status <> 'pending'")
    except psycopg.Error:
        return None


def settle(
    services: DrillServices, accepted: set[Effect], timeout_s: float = SETTLE_TIMEOUT_S
) -> None:
    """Wait until nothing is pending and every accepted effect is applied (or time is up: then
    the tally reports what is missing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pending_inbox(services) == 0 and accepted <= applied_effects(services):
            return
        time.sleep(1.0)


def tally(services: DrillServices, accepted: set[Effect]) -> Tally:
    present = applied_effects(services)
    lost = sorted(accepted - present)
    surplus = {name: infra.scalar(services, sql) for name, sql in DUPLICATE_QUERIES.items()}
    return Tally(
        applied=len(accepted & present),
        lost=len(lost),
        duplicated=sum(surplus.values()),
        lost_examples=tuple(":".join(e) for e in lost[:5]),
        duplicate_kinds=tuple(f"{k}: {n}" for k, n in surplus.items() if n),
    )
