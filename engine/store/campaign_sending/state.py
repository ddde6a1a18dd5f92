"""What a tick must know before claiming: sends in flight, sends failing, today's quota use."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from engine.events import Frozen


class OpenRows(Frozen):
    """Rows of a campaign that are not done yet."""

    pending: bool  # any row still waiting to be claimed
    claimed: int  # claimed rows whose message has no final status yet (in flight)
    retrying: int  # of those, messages waiting for a retry after a failed provider call


def get_open_rows(conn: Connection, *, tenant_id: int, campaign_id: int) -> OpenRows:
    """Cheap on any campaign size: each part reads a partial index of open rows only."""
    row = conn.execute(
        text(
            """
            SELECT
                EXISTS (SELECT 1 FROM campaign_contacts
                        WHERE tenant_id = :t AND campaign_id = :c AND status = 'pending'),
                (SELECT count(*) FROM campaign_contacts
                 WHERE tenant_id = :t AND campaign_id = :c AND status = 'claimed'),
                (SELECT count(*) FROM campaign_contacts cc JOIN messages m ON m.id = cc.message_id
                 WHERE cc.tenant_id = :t AND cc.campaign_id = :c AND cc.status = 'claimed'
                   AND m.status = 'pending' AND m.send_attempts > 0 AND m.sending_at IS NULL)
            """
        ),
        {"t": tenant_id, "c": campaign_id},
    ).one()
    return OpenRows(pending=bool(row[0]), claimed=int(row[1]), retrying=int(row[2]))


def count_sends_since(conn: Connection, *, tenant_id: int, since: datetime, cap: int) -> int:
    """Campaign messages the tenant created since `since` (a local midnight), counting up to
    `cap` only: the quota check needs to know "reached", not the exact excess.

    Rows claimed then skipped are not sends. Campaigns finished before `since` are not read.
    """
    if cap <= 0:
        return 0
    value = conn.execute(
        text(
            """
            SELECT count(*) FROM (
                SELECT 1 FROM campaign_contacts cc
                JOIN campaigns c ON c.id = cc.campaign_id AND c.tenant_id = :t
                WHERE cc.tenant_id = :t AND c.started_at IS NOT NULL
                  AND (c.finished_at IS NULL OR c.finished_at >= :since)
                  AND cc.claimed_at >= :since AND cc.status NOT IN ('pending', 'skipped')
                LIMIT :cap) used
            """
        ),
        {"t": tenant_id, "since": since, "cap": cap},
    ).scalar_one()
    return int(value)


def insert_note(
    conn: Connection, *, tenant_id: int, campaign_id: int, status: str, reason: str
) -> None:
    """A campaign event that is not a status change (the status stays): why sending waits."""
    conn.execute(
        text(
            "INSERT INTO campaign_events (tenant_id, campaign_id, from_status, to_status, reason) "
            "VALUES (:t, :c, :s, :s, :r)"
        ),
        {"t": tenant_id, "c": campaign_id, "s": status, "r": reason},
    )
