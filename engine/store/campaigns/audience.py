"""Freezing a campaign's audience: its contacts, each with a random variant, in one statement."""

from __future__ import annotations

from sqlalchemy import Connection, text

from engine.store.campaigns.counts import increment_counts

# Why a contact of the audience is not sent to, as campaign_contacts.reason says it.
SKIP_REASONS = ("merged", "opted_out", "suppressed", "unreachable", "no_address")

# One INSERT … SELECT: the audience (tags, ids or an import) joined to contacts; the first
# reason that applies marks a contact `skipped`; a phone channel reaches a contact by phone
# even before it has an identity there. ON CONFLICT keeps it idempotent.
_FREEZE = text(
    """
    WITH camp AS (
        SELECT c.audience, greatest(jsonb_array_length(c.variants), 1) AS n, ch.type AS kind
        FROM campaigns c JOIN channels ch ON ch.id = c.channel_id AND ch.tenant_id = c.tenant_id
        WHERE c.tenant_id = :t AND c.id = :id
    ),
    wanted AS MATERIALIZED (
        SELECT ct.contact_id FROM camp, contact_tags ct
        WHERE ct.tenant_id = :t AND ct.tag_id IN (
            SELECT CAST(x AS bigint)
            FROM jsonb_array_elements_text(coalesce(camp.audience -> 'tag_ids', '[]')) AS x)
        UNION
        SELECT CAST(x AS bigint)
        FROM camp, jsonb_array_elements_text(coalesce(camp.audience -> 'contact_ids', '[]')) AS x
        UNION
        SELECT ic.contact_id FROM camp, campaign_import_contacts ic
        WHERE ic.tenant_id = :t AND ic.import_id = CAST(camp.audience ->> 'csv_import_id' AS bigint)
    ),
    people AS (
        SELECT p.id, CASE
            WHEN p.merged_into_id IS NOT NULL THEN 'merged'
            WHEN p.opted_out THEN 'opted_out'
            WHEN EXISTS (
                SELECT 1 FROM suppression_list s WHERE s.tenant_id = :t
                AND s.address IN (p.phone, lower(p.email), i.identity_key, i.external_id)
            ) THEN 'suppressed'
            WHEN p.unreachable THEN 'unreachable'
            WHEN i.external_id IS NULL
                 AND NOT (camp.kind IN ('whatsapp', 'sms') AND p.phone IS NOT NULL)
            THEN 'no_address'
        END AS skip_reason
        FROM wanted w
        JOIN contacts p ON p.id = w.contact_id AND p.tenant_id = :t
        CROSS JOIN camp
        LEFT JOIN LATERAL (
            SELECT ci.identity_key, ci.external_id FROM contact_identities ci
            WHERE ci.tenant_id = :t AND ci.contact_id = p.id AND ci.channel_type = camp.kind
            ORDER BY ci.id LIMIT 1
        ) i ON true
    ),
    ins AS (
        INSERT INTO campaign_contacts (tenant_id, campaign_id, contact_id, variant, status, reason)
        SELECT :t, :id, people.id,
               CASE WHEN skip_reason IS NULL
                    THEN CAST(floor(random() * camp.n) AS smallint) END,
               CASE WHEN skip_reason IS NULL THEN 'pending' ELSE 'skipped' END,
               skip_reason
        FROM people CROSS JOIN camp
        ORDER BY people.id
        ON CONFLICT (campaign_id, contact_id) DO NOTHING
        RETURNING status
    )
    SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'skipped')
    FROM ins
    """
)


def freeze_audience(conn: Connection, campaign_id: int, *, tenant_id: int) -> int:
    """Write the campaign's contacts to campaign_contacts; return how many rows were added.

    Each eligible contact gets `pending` and a variant drawn at random in SQL (an index into
    the campaign's variants, from 0). Contacts merged into another, opted out, on the
    suppression list (phone, e-mail or channel address), marked unreachable, or without an
    address on the campaign's channel get `skipped` with that reason (SKIP_REASONS).
    Idempotent (ON CONFLICT DO NOTHING): a second call adds nothing and counts nothing.
    Adds what it wrote to the live counters.
    """
    pending, skipped = conn.execute(_FREEZE, {"t": tenant_id, "id": campaign_id}).one()
    increment_counts(
        conn, campaign_id, {"pending": pending, "skipped": skipped}, tenant_id=tenant_id
    )
    return int(pending) + int(skipped)
