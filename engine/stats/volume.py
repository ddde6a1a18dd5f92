"""Message and ticket volume of a tenant over a period, grouped by channel, queue, agent or day."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.stats.period import Filters, GroupBy, Period, StatRow, label_groups, ticket_key

# Messages count toward their own channel and local day; toward a queue or an agent through
# their ticket's current queue and assignee.
_MESSAGE_KEYS: dict[GroupBy, str] = {
    "channel": "m.channel_id",
    "queue": "coalesce(t.queue_id, 0)",
    "agent": "coalesce(t.user_id, 0)",
    "day": "(m.created_at AT TIME ZONE :tz)::date",
}
_TICKET_JOIN = " JOIN tickets t ON t.id = m.ticket_id AND t.tenant_id = :t"


class VolumeRow(StatRow):
    inbound: int
    outbound: int
    tickets_created: int


def _sql(group_by: GroupBy, filters: Filters) -> str:
    needs_ticket = group_by in ("queue", "agent") or filters.queue_id is not None
    return f"""
    WITH msg AS (
        SELECT {_MESSAGE_KEYS[group_by]} AS k,
               count(*) FILTER (WHERE m.direction = 'in') AS inbound,
               count(*) FILTER (WHERE m.direction = 'out') AS outbound
        FROM messages m {_TICKET_JOIN if needs_ticket else ""}
        WHERE m.tenant_id = :t AND m.created_at >= :start AND m.created_at < :end
              {filters.sql("m")}
        GROUP BY 1),
    tk AS (
        SELECT {ticket_key(group_by)} AS k, count(*) AS created
        FROM tickets t
        WHERE t.tenant_id = :t AND t.created_at >= :start AND t.created_at < :end
              {filters.sql()}
        GROUP BY 1)
    SELECT coalesce(msg.k, tk.k) AS k, coalesce(msg.inbound, 0), coalesce(msg.outbound, 0),
           coalesce(tk.created, 0)
    FROM msg FULL JOIN tk ON tk.k = msg.k
    ORDER BY 1
    """  # noqa: S608 - fragments are constants chosen by enum, values are bound


async def get_volume(
    conn: AsyncConnection, tenant_id: int, period: Period, group_by: GroupBy, filters: Filters
) -> list[VolumeRow]:
    """Inbound and outbound messages and tickets created per group, ordered by key. Read-only."""
    params = {**period.params(tenant_id), **filters.params()}
    rows = (await conn.execute(text(_sql(group_by, filters)), params)).all()
    groups = await label_groups(conn, tenant_id, group_by, [r[0] for r in rows])
    return [
        VolumeRow(
            **group.model_dump(), inbound=int(r[1]), outbound=int(r[2]), tickets_created=int(r[3])
        )
        for group, r in zip(groups, rows, strict=True)
    ]
