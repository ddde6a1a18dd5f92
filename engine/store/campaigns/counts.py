"""Live progress counters of a campaign: one jsonb map, changed atomically, never recomputed."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Connection, text

from engine.store.campaigns.core import COUNT_KEYS


def increment_counts(
    conn: Connection, campaign_id: int, deltas: Mapping[str, int], *, tenant_id: int
) -> dict[str, int]:
    """Add `deltas` (e.g. {"pending": -1, "sent": 1}) to the live counters in one UPDATE.

    Atomic against concurrent increments (row lock of the UPDATE); keys are COUNT_KEYS
    (ValueError otherwise). Returns the counters after the change ({} if no such campaign).
    """
    unknown = set(deltas) - set(COUNT_KEYS)
    if unknown:
        raise ValueError(f"not campaign counters: {sorted(unknown)}")
    changes = {k: int(v) for k, v in deltas.items() if v}
    if not changes:
        return get_counts(conn, tenant_id=tenant_id, campaign_id=campaign_id)
    value = conn.execute(
        text(
            "UPDATE campaigns c SET updated_at = now(), counts = c.counts || ("
            " SELECT jsonb_object_agg(d.key, coalesce((c.counts ->> d.key)::bigint, 0)"
            " + d.value::bigint) FROM jsonb_each_text(CAST(:d AS jsonb)) AS d) "
            "WHERE c.tenant_id = :t AND c.id = :id RETURNING c.counts"
        ),
        {"t": tenant_id, "id": campaign_id, "d": json.dumps(changes)},
    ).scalar_one_or_none()
    return dict(value or {})


def get_counts(conn: Connection, *, tenant_id: int, campaign_id: int) -> dict[str, int]:
    value = conn.execute(
        text("SELECT counts FROM campaigns WHERE tenant_id = :t AND id = :id"),
        {"t": tenant_id, "id": campaign_id},
    ).scalar_one_or_none()
    return dict(value or {})
