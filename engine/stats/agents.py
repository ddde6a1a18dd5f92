"""Per-agent workload and first-contact resolution over a period."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import View
from engine.stats.period import Filters, GroupBy, Period, StatRow, label_groups, ticket_key


class AgentRow(StatRow):
    """One agent (id None: tickets nobody is assigned to)."""

    tickets_assigned: int  # created in the period, assigned to the agent now
    tickets_closed: int  # closed in the period while assigned to the agent
    messages_sent: int  # written by the agent in the period
    first_response_average_s: float | None  # over their answered tickets of the period


def _agents_sql(filters: Filters) -> str:
    join = " JOIN tickets t ON t.id = m.ticket_id AND t.tenant_id = :t" if filters.queue_id else ""
    frt = "extract(epoch FROM t.first_response_at - t.created_at)::float8"
    return f"""
    SELECT k, sum(assigned), sum(closed), sum(sent), sum(frt_sum) / nullif(sum(answered), 0)
    FROM (
        SELECT coalesce(t.user_id, 0) AS k, count(*) AS assigned, 0 AS closed, 0 AS sent,
               sum({frt}) FILTER (WHERE t.last_inbound_at IS NOT NULL) AS frt_sum,
               count(t.first_response_at) FILTER (WHERE t.last_inbound_at IS NOT NULL)
                   AS answered
        FROM tickets t
        WHERE t.tenant_id = :t AND t.created_at >= :start AND t.created_at < :end
              {filters.sql()}
        GROUP BY 1
        UNION ALL
        SELECT coalesce(t.user_id, 0), 0, count(*), 0, 0, 0
        FROM tickets t
        WHERE t.tenant_id = :t AND t.closed_at >= :start AND t.closed_at < :end
              AND t.status = 'closed' {filters.sql()}
        GROUP BY 1
        UNION ALL
        SELECT m.user_id, 0, 0, count(*), 0, 0
        FROM messages m {join}
        WHERE m.tenant_id = :t AND m.created_at >= :start AND m.created_at < :end
              AND m.direction = 'out' AND m.user_id IS NOT NULL {filters.sql("m")}
        GROUP BY 1
    ) AS parts
    GROUP BY k ORDER BY k
    """  # noqa: S608 - fragments are constants, values are bound


async def get_agents(
    conn: AsyncConnection, tenant_id: int, period: Period, filters: Filters
) -> list[AgentRow]:
    """Tickets and messages per agent, unassigned tickets first. Read-only."""
    params = {**period.params(tenant_id), **filters.params()}
    rows = (await conn.execute(text(_agents_sql(filters)), params)).all()
    labels = await label_groups(conn, tenant_id, "agent", [r[0] for r in rows])
    return [
        AgentRow(
            **g.model_dump(),
            tickets_assigned=int(r[1]),
            tickets_closed=int(r[2]),
            messages_sent=int(r[3]),
            first_response_average_s=None if r[4] is None else float(r[4]),
        )
        for g, r in zip(labels, rows, strict=True)
    ]


class ResolutionRate(View):
    closed: int
    first_contact: int
    rate: float | None  # first_contact / closed; None when nothing closed


class ResolutionRateRow(StatRow):
    closed: int
    first_contact: int
    rate: float | None


class FirstContactReport(View):
    overall: ResolutionRate
    groups: tuple[ResolutionRateRow, ...]


def _fcr_sql(key: str, filters: Filters) -> str:
    return f"""
    SELECT {key} AS k, count(*),
           count(*) FILTER (
               WHERE NOT EXISTS (
                   SELECT 1 FROM ticket_events e
                   WHERE e.ticket_id = t.id AND e.tenant_id = :t
                     AND e.type IN ('reopened', 'transferred'))
                 AND (SELECT count(DISTINCT m.user_id) FROM messages m
                      WHERE m.ticket_id = t.id AND m.tenant_id = :t AND m.direction = 'out'
                        AND m.user_id IS NOT NULL) <= 1)
    FROM tickets t
    WHERE t.tenant_id = :t AND t.closed_at >= :start AND t.closed_at < :end
      AND t.status = 'closed' AND t.last_inbound_at IS NOT NULL {filters.sql()}
    GROUP BY 1 ORDER BY 1
    """  # noqa: S608 - fragments are constants, values are bound


def _rate(row: tuple[object, ...] | None) -> dict[str, object]:
    closed, first = (0, 0) if row is None else (int(str(row[1])), int(str(row[2])))
    return {"closed": closed, "first_contact": first, "rate": first / closed if closed else None}


async def get_first_contact_resolution(
    conn: AsyncConnection,
    tenant_id: int,
    period: Period,
    filters: Filters,
    *,
    group_by: GroupBy | None = None,
) -> FirstContactReport:
    """The first-contact resolution rate, overall and per group. Read-only.

    Counted over tickets the contact wrote in, closed in the period and still closed. Such a
    ticket was resolved at first contact when it was never reopened, never transferred, and
    at most one agent wrote in it (bot, campaign and API messages name no agent). Grouped by
    day, a ticket counts on the local day it was closed.
    """
    params = {**period.params(tenant_id), **filters.params()}
    overall = (await conn.execute(text(_fcr_sql("0", filters)), params)).first()
    groups: tuple[ResolutionRateRow, ...] = ()
    if group_by is not None:
        sql = _fcr_sql(ticket_key(group_by, "closed_at"), filters)
        rows = (await conn.execute(text(sql), params)).all()
        labels = await label_groups(conn, tenant_id, group_by, [r[0] for r in rows])
        groups = tuple(
            ResolutionRateRow.model_validate({**g.model_dump(), **_rate(tuple(r))})
            for g, r in zip(labels, rows, strict=True)
        )
    return FirstContactReport(
        overall=ResolutionRate.model_validate(_rate(None if overall is None else tuple(overall))),
        groups=groups,
    )
