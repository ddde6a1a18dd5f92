"""Winding down and reconciling: skip what is left, cancel unsent messages, find stale claims."""

from __future__ import annotations

from sqlalchemy import Connection, text

from engine.events import Frozen
from engine.store.send_batch import SEND_ABANDONED, SEND_LEASE_S, SEND_UNTRIED

CANCELLED = "cancelled"  # error_code of a campaign message cancelled before it was sent


class StaleClaim(Frozen):
    """A row claimed long ago that is still `claimed`, and where its message stands."""

    row_id: int
    tenant_id: int
    campaign_id: int
    message_id: int | None
    message_status: str | None
    send_attempts: int
    lost: bool  # pending, never tried or abandoned (SEND_ABANDONED): offer it again


def skip_pending(conn: Connection, *, tenant_id: int, campaign_id: int, reason: str) -> int:
    """Mark every row still waiting to be claimed `skipped` with `reason`; how many."""
    value = conn.execute(
        text(
            """
            WITH s AS (
                UPDATE campaign_contacts SET status = 'skipped', reason = :r, updated_at = now()
                WHERE tenant_id = :t AND campaign_id = :c AND status = 'pending'
                RETURNING 1)
            SELECT count(*) FROM s
            """
        ),
        {"t": tenant_id, "c": campaign_id, "r": reason},
    ).scalar_one()
    return int(value)


def cancel_unsent(conn: Connection, *, tenant_id: int, campaign_id: int) -> list[tuple[int, int]]:
    """Fail the campaign's claimed messages no send holds (never tried, or waiting for a retry)
    with error_code "cancelled", and mark their rows skipped "cancelled". (message id, ticket
    id) of each.

    Messages are locked before rows, the order a send's ack takes, so the two never deadlock;
    a send that claims the message first keeps it (sending_at is fresh) and its outcome is
    recorded as usual. A claim left by a crashed worker counts as free after the send lease.
    """
    rows = conn.execute(
        text(
            """
            WITH failed AS (
                UPDATE messages m SET status = 'failed', status_at = now(), error_code = :code,
                    error_message = 'Campaign cancelled before it was sent.', sending_at = NULL
                FROM campaign_contacts cc
                WHERE cc.tenant_id = :t AND cc.campaign_id = :c AND cc.status = 'claimed'
                  AND m.id = cc.message_id AND m.tenant_id = :t AND m.status = 'pending'
                  AND (m.sending_at IS NULL
                       OR m.sending_at < now() - make_interval(secs => :lease_s))
                RETURNING m.id, m.ticket_id),
            rows AS (
                UPDATE campaign_contacts cc SET status = 'skipped', reason = :code,
                    error_code = :code, updated_at = now()
                FROM failed WHERE cc.message_id = failed.id AND cc.campaign_id = :c
                  AND cc.status = 'claimed')
            SELECT id, ticket_id FROM failed ORDER BY id
            """
        ),
        {"t": tenant_id, "c": campaign_id, "code": CANCELLED, "lease_s": SEND_LEASE_S},
    ).all()
    return [(int(r[0]), int(r[1])) for r in rows]


def get_stale_claims(
    conn: Connection, *, older_than_s: int, retry_lost_after_s: int, limit: int
) -> list[StaleClaim]:
    """Rows claimed more than `older_than_s` ago and still `claimed`, with their message's
    state (system scope). Reads the partial index of claimed rows only."""
    rows = conn.execute(
        text(
            f"""
            SELECT cc.id, cc.tenant_id, cc.campaign_id, cc.message_id, m.status,
                   coalesce(m.send_attempts, 0),
                   coalesce(m.status = 'pending' AND ({SEND_UNTRIED} OR {SEND_ABANDONED}), false)
            FROM campaign_contacts cc
            LEFT JOIN messages m ON m.id = cc.message_id
            WHERE cc.status = 'claimed'
              AND cc.claimed_at < now() - make_interval(secs => :age)
            ORDER BY cc.claimed_at LIMIT :limit
            """  # noqa: S608 - the fragments are constants; values are bound
        ),
        {
            "age": older_than_s,
            "limit": limit,
            "lease_s": SEND_LEASE_S,
            "retry_lost_s": retry_lost_after_s,
        },
    ).all()
    keys = list(StaleClaim.model_fields)
    return [StaleClaim.model_validate(dict(zip(keys, r, strict=True))) for r in rows]


def fail_orphans(conn: Connection, *, tenant_id: int, row_ids: list[int]) -> dict[int, int]:
    """Claimed rows whose message is gone (its ticket was deleted): failed "message_missing".

    Never put back to pending: the message may have been sent before it was deleted. Returns
    how many rows failed per campaign id.
    """
    if not row_ids:
        return {}
    value = conn.execute(
        text(
            """
            WITH f AS (
                UPDATE campaign_contacts SET status = 'failed', error_code = 'message_missing',
                    updated_at = now()
                WHERE tenant_id = :t AND id = ANY(:ids) AND status = 'claimed'
                  AND message_id IS NULL
                RETURNING campaign_id)
            SELECT campaign_id, count(*) FROM f GROUP BY campaign_id
            """
        ),
        {"t": tenant_id, "ids": row_ids},
    ).all()
    return {int(r[0]): int(r[1]) for r in value}
