"""First response and resolution times: average, median and 90th percentile per group.

Both are measured on tickets the contact wrote in (`last_inbound_at` set), so tickets opened
only to carry a campaign send do not count as instantly answered or resolved.

* First response: from the ticket's creation to the first message sent in it
  (`first_response_at`), over tickets created in the period and answered.
* Resolution: from creation to `closed_at`, over tickets closed in the period.

Wall-clock figures come from SQL (`percentile_cont`). Business-hours figures (the tenant's
`business_hours` setting) are evaluated per ticket in Python over at most
BUSINESS_HOURS_MAX_TICKETS tickets, the most recent first; `complete` says whether that
covered every ticket of the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import View
from engine.stats.business import BusinessDurations, get_business_hours, measure_open_time
from engine.stats.period import (
    Durations,
    Filters,
    GroupBy,
    Period,
    StatRow,
    label_groups,
    ticket_key,
)

BUSINESS_HOURS_MAX_TICKETS = 50_000
Measure = Literal["first_response", "resolution"]


@dataclass(frozen=True)
class _Spec:
    end: str  # the column the measured time ends at
    period_column: str  # the column the period selects on
    condition: str


_SPECS: dict[Measure, _Spec] = {
    "first_response": _Spec("first_response_at", "created_at", "t.first_response_at IS NOT NULL"),
    "resolution": _Spec("closed_at", "closed_at", "t.closed_at IS NOT NULL"),
}


class DurationRow(StatRow, Durations):
    """The durations of one group."""


class TimingReport(View):
    measure: Measure
    overall: Durations
    groups: tuple[DurationRow, ...]
    business_hours: BusinessDurations | None  # None: the tenant has no business hours set


def _where(measure: Measure, filters: Filters) -> str:
    spec = _SPECS[measure]
    column = f"t.{spec.period_column}"
    return f"""
        FROM tickets t
        WHERE t.tenant_id = :t AND {column} >= :start AND {column} < :end
          AND {spec.condition} AND t.last_inbound_at IS NOT NULL {filters.sql()}
    """


def _aggregate_sql(measure: Measure, key: str, filters: Filters) -> str:
    seconds = f"extract(epoch FROM t.{_SPECS[measure].end} - t.created_at)::float8"
    return f"""
    SELECT {key} AS k, count(*), avg({seconds}),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY {seconds}),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY {seconds})
    {_where(measure, filters)}
    GROUP BY 1 ORDER BY 1
    """


def _pairs_sql(measure: Measure, filters: Filters) -> str:
    spec = _SPECS[measure]
    return f"""
    SELECT t.created_at, t.{spec.end} {_where(measure, filters)}
    ORDER BY t.{spec.period_column} DESC LIMIT :cap
    """


def _durations(row: Sequence[Any] | None) -> dict[str, Any]:
    if row is None:
        return {"tickets": 0, "average_s": None, "p50_s": None, "p90_s": None}
    return {"tickets": row[1], "average_s": row[2], "p50_s": row[3], "p90_s": row[4]}


async def get_timing(
    conn: AsyncConnection,
    tenant_id: int,
    period: Period,
    measure: Measure,
    filters: Filters,
    *,
    group_by: GroupBy | None = None,
) -> TimingReport:
    """Overall and per-group durations of `measure`, with business-hours figures. Read-only."""
    params = {**period.params(tenant_id), **filters.params()}
    overall = (await conn.execute(text(_aggregate_sql(measure, "0", filters)), params)).first()
    groups: tuple[DurationRow, ...] = ()
    if group_by is not None:
        key = ticket_key(group_by, _SPECS[measure].period_column)
        rows = (await conn.execute(text(_aggregate_sql(measure, key, filters)), params)).all()
        labels = await label_groups(conn, tenant_id, group_by, [r[0] for r in rows])
        groups = tuple(
            DurationRow(**g.model_dump(), **_durations(r))
            for g, r in zip(labels, rows, strict=True)
        )
    business = None
    hours = await get_business_hours(conn, tenant_id)
    if hours is not None:
        capped = {**params, "cap": BUSINESS_HOURS_MAX_TICKETS}
        rows = (await conn.execute(text(_pairs_sql(measure, filters)), capped)).all()
        pairs = [(r[0], r[1]) for r in rows]
        total = 0 if overall is None else int(overall[1])
        business = measure_open_time(hours, pairs, complete=len(pairs) == total)
    return TimingReport(
        measure=measure,
        overall=Durations(**_durations(overall)),
        groups=groups,
        business_hours=business,
    )
