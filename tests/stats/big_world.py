"""A large dataset for plan checks: 8 tenants, 200,000 tickets, 1,000,000 messages.

One INSERT … SELECT generate_series per table, so seeding takes seconds, not minutes.
Tickets spread evenly over 2024-01-01 .. 2024-06-29; the last 1,000 are still live.
"""

from __future__ import annotations

import psycopg

TENANTS = 8
TICKETS = 200_000
MESSAGES_PER_TICKET = 5

_SEED = [
    f"""INSERT INTO tenants (id, name, time_zone)
        SELECT g, 'Big ' || g, 'America/Sao_Paulo' FROM generate_series(1, {TENANTS}) g""",
    f"""INSERT INTO channels (id, tenant_id, type, name, external_id)
        SELECT g, (g - 1) / 3 + 1, 'whatsapp', 'Channel ' || g, 'big-' || g
        FROM generate_series(1, {TENANTS * 3}) g""",
    f"""INSERT INTO queues (id, tenant_id, name)
        SELECT g, (g - 1) / 3 + 1, 'Queue ' || g FROM generate_series(1, {TENANTS * 3}) g""",
    f"""INSERT INTO users (id, tenant_id, name, email, password_hash, role)
        SELECT g, (g - 1) / 10 + 1, 'Agent ' || g, 'agent' || g || '@big.test', 'x', 'agent'
        FROM generate_series(1, {TENANTS * 10}) g""",
    f"""INSERT INTO contacts (id, tenant_id, name)
        SELECT g, (g - 1) % {TENANTS} + 1, 'Contact ' || g FROM generate_series(1, {TICKETS}) g""",
    f"""INSERT INTO tickets (id, tenant_id, channel_id, contact_id, status, protocol, queue_id,
                            user_id, created_at, first_response_at, closed_at, last_inbound_at)
        SELECT g, s.tenant, (s.tenant - 1) * 3 + 1 + (g / 8) % 3, g, s.status, 'BIG' || g,
               CASE WHEN g % 10 <> 0 THEN (s.tenant - 1) * 3 + 1 + (g / 8) % 3 END,
               CASE WHEN s.status <> 'pending' THEN (s.tenant - 1) * 10 + 1 + (g / 8) % 10 END,
               s.created, s.created + (g % 50 + 1) * interval '1 minute',
               CASE WHEN s.status = 'closed' THEN s.created + (g % 100 + 1) * interval '1 hour' END,
               s.created
        FROM generate_series(1, {TICKETS}) g,
             LATERAL (SELECT (g - 1) % {TENANTS} + 1 AS tenant,
                             CASE WHEN g <= {TICKETS - 1000} THEN 'closed'
                                  WHEN g % 2 = 0 THEN 'open' ELSE 'pending' END AS status,
                             timestamptz '2024-01-01' + g * interval '77.76 seconds' AS created) s
    """,
    f"""INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, type,
                             status, user_id, send_type, created_at)
        SELECT t.tenant_id, t.id, t.contact_id, t.channel_id,
               CASE WHEN n % 2 = 1 THEN 'in' ELSE 'out' END, 'text',
               CASE WHEN n % 2 = 1 THEN 'received' ELSE 'sent' END,
               CASE WHEN n % 2 = 0 THEN t.user_id END,
               CASE WHEN n % 2 = 0 THEN 'chat' END,
               t.created_at + n * interval '7 minutes'
        FROM tickets t, generate_series(1, {MESSAGES_PER_TICKET}) n""",
    """INSERT INTO ticket_events (tenant_id, ticket_id, type)
        SELECT tenant_id, id, CASE WHEN id % 7 = 0 THEN 'transferred' ELSE 'reopened' END
        FROM tickets WHERE id % 7 = 0 OR id % 11 = 0""",
    f"""INSERT INTO campaigns (id, tenant_id, channel_id, name, status, created_at)
        SELECT g, (g - 1) / 10 + 1, ((g - 1) / 10) * 3 + 1, 'Campaign ' || g, 'finished',
               timestamptz '2024-05-01' + (g - 1) % 10 * interval '4 days'
        FROM generate_series(1, {TENANTS * 10}) g""",
    """INSERT INTO campaign_contacts (tenant_id, campaign_id, contact_id, status)
        SELECT c.tenant_id, (c.tenant_id - 1) * 10 + 1 + (c.id / 8) % 10, c.id,
               (ARRAY['sent', 'delivered', 'read', 'failed', 'skipped'])[c.id % 5 + 1]
        FROM contacts c""",
    "ANALYZE",
]


def seed_big_world(dsn: str) -> None:
    """Fill the (empty, schema-applied) database at `dsn`, as its owner."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        for statement in _SEED:
            conn.execute(statement.encode())
