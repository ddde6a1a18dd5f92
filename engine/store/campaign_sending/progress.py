"""Rows follow their messages' statuses; live counters change with them, throttled announcements."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, text

from engine.events import Frozen
from engine.store.campaigns import COUNT_KEYS

# campaigns.counts has no `claimed`: a claimed row is still pending until its message is sent.
_COUNTED_AS = {"claimed": "pending"}


class StatusMove(Frozen):
    """`count` rows of one campaign moved from status `old` to `new`."""

    campaign_id: int
    old: str
    new: str
    count: int


class CountsChange(Frozen):
    """Counters after a change, and whether this change is the one to announce."""

    status: str
    counts: dict[str, int]
    announce: bool


def count_key(status: str) -> str:
    """The campaigns.counts key a campaign_contacts status is counted under."""
    return _COUNTED_AS.get(status, status)


def follow_messages(
    conn: Connection, *, tenant_id: int, message_ids: Sequence[int]
) -> list[StatusMove]:
    """Move each campaign row whose message is among `message_ids` to the message's status
    (sent, delivered, read or failed with its code), forward only.

    Reads the messages as this transaction sees them: call it where their status changed,
    after the change. A skipped row (cancelled) and a read one never move again. Rows are
    locked after their messages, the order every status path takes, so none deadlock.
    """
    if not message_ids:
        return []
    rows = conn.execute(
        text(
            """
            WITH cur AS (
                SELECT cc.id, cc.campaign_id, cc.status AS old, m.status AS new, m.error_code,
                       m.status_at
                FROM campaign_contacts cc JOIN messages m ON m.id = cc.message_id
                WHERE cc.tenant_id = :t AND cc.message_id = ANY(:ids)
                  AND cc.status IN ('claimed', 'sent', 'delivered')
                  AND m.status IN ('sent', 'delivered', 'read', 'failed')
                FOR UPDATE OF cc),
            moved AS (
                UPDATE campaign_contacts cc SET status = cur.new,
                    sent_at = CASE WHEN cur.new = 'failed' THEN cc.sent_at
                                   ELSE coalesce(cc.sent_at, cur.status_at, now()) END,
                    error_code = CASE WHEN cur.new = 'failed' THEN cur.error_code
                                      ELSE cc.error_code END,
                    updated_at = now()
                FROM cur
                WHERE cc.id = cur.id
                  AND array_position(ARRAY['claimed','sent','delivered','read','failed'], cur.old)
                    < array_position(ARRAY['claimed','sent','delivered','read','failed'], cur.new)
                RETURNING cc.campaign_id, cur.old, cur.new)
            SELECT campaign_id, old, new, count(*) FROM moved
            GROUP BY campaign_id, old, new ORDER BY campaign_id, old, new
            """
        ),
        {"t": tenant_id, "ids": list(message_ids)},
    ).all()
    return [StatusMove(campaign_id=r[0], old=r[1], new=r[2], count=r[3]) for r in rows]


def deltas_of(moves: Sequence[StatusMove]) -> dict[int, dict[str, int]]:
    """Counter deltas per campaign for a set of moves."""
    out: dict[int, dict[str, int]] = {}
    for move in moves:
        deltas = out.setdefault(move.campaign_id, {})
        old, new = count_key(move.old), count_key(move.new)
        deltas[old] = deltas.get(old, 0) - move.count
        deltas[new] = deltas.get(new, 0) + move.count
    return out


def add_counts(
    conn: Connection,
    *,
    tenant_id: int,
    campaign_id: int,
    deltas: Mapping[str, int],
    throttle_s: float,
) -> CountsChange | None:
    """Add `deltas` to the live counters and say whether to announce (at most once per
    `throttle_s` per campaign). None when the tenant has no such campaign.

    The campaign's updated_at doubles as "last announced": it only moves when this change is
    announced, so a burst of statuses yields one event a second, not one per status. The row
    lock serializes concurrent changes; callers take campaigns in id order.
    """
    unknown = set(deltas) - set(COUNT_KEYS)
    if unknown:
        raise ValueError(f"not campaign counters: {sorted(unknown)}")
    changes = {k: int(v) for k, v in deltas.items() if v}
    row = conn.execute(
        text(
            """
            WITH prev AS (
                SELECT id, updated_at <= now() - make_interval(secs => :throttle) AS due
                FROM campaigns WHERE tenant_id = :t AND id = :id FOR UPDATE)
            UPDATE campaigns c SET
                counts = c.counts || coalesce((
                    SELECT jsonb_object_agg(d.key,
                        coalesce((c.counts ->> d.key)::bigint, 0) + d.value::bigint)
                    FROM jsonb_each_text(CAST(:d AS jsonb)) AS d), '{}'::jsonb),
                updated_at = CASE WHEN prev.due THEN now() ELSE c.updated_at END
            FROM prev WHERE c.id = prev.id
            RETURNING c.status, c.counts, prev.due
            """
        ),
        {"t": tenant_id, "id": campaign_id, "d": json.dumps(changes), "throttle": throttle_s},
    ).first()
    if row is None:
        return None
    return CountsChange(status=row[0], counts=dict(row[1] or {}), announce=bool(row[2]))
