"""Campaign results: how many of each campaign's contacts reached each send status."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import UtcDatetime, View
from engine.stats.period import Filters, Period

MAX_CAMPAIGNS = 200
_STATUSES = ("pending", "claimed", "sent", "delivered", "read", "failed", "skipped")


class CampaignResult(View):
    id: int
    name: str
    status: str
    channel_id: int
    created_at: UtcDatetime
    contacts: int
    pending: int
    claimed: int
    sent: int  # accepted by the provider, no later status yet
    delivered: int
    read: int
    failed: int
    skipped: int


_COUNTS = ",\n".join(f"count(cc.id) FILTER (WHERE cc.status = '{s}') AS {s}" for s in _STATUSES)


def _sql(filters: Filters) -> str:
    channel = " AND c.channel_id = :channel_id" if filters.channel_id is not None else ""
    return f"""
    SELECT c.id, c.name, c.status, c.channel_id, c.created_at, count(cc.id) AS contacts,
           {_COUNTS}
    FROM (SELECT * FROM campaigns c
          WHERE c.tenant_id = :t AND c.created_at >= :start AND c.created_at < :end {channel}
          ORDER BY c.created_at DESC, c.id DESC LIMIT :limit) AS c
    LEFT JOIN campaign_contacts cc ON cc.campaign_id = c.id AND cc.tenant_id = :t
    GROUP BY c.id, c.name, c.status, c.channel_id, c.created_at
    ORDER BY c.created_at DESC, c.id DESC
    """  # noqa: S608 - fragments are constants, values are bound


async def get_campaign_results(
    conn: AsyncConnection, tenant_id: int, period: Period, filters: Filters
) -> list[CampaignResult]:
    """The most recent MAX_CAMPAIGNS campaigns created in the period, newest first. Read-only.

    A contact counts under its current status only: a read message is not also delivered.
    """
    params = {**period.params(tenant_id), **filters.params(), "limit": MAX_CAMPAIGNS}
    rows = (await conn.execute(text(_sql(filters)), params)).mappings().all()
    return [CampaignResult.model_validate(dict(r)) for r in rows]
