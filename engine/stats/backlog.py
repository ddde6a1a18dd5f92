"""What is waiting now: live tickets per queue, with the age of the oldest."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import View
from engine.stats.period import Filters, StatRow, label_groups


class BacklogRow(StatRow):
    """One queue (id None: tickets in no queue)."""

    pending: int
    open: int
    oldest_age_s: float  # since the oldest live ticket of the queue was created


class Backlog(View):
    pending: int
    open: int
    oldest_age_s: float | None  # None: nothing is waiting
    queues: tuple[BacklogRow, ...]


def _sql(filters: Filters) -> str:
    return f"""
    SELECT coalesce(t.queue_id, 0) AS k,
           count(*) FILTER (WHERE t.status = 'pending'),
           count(*) FILTER (WHERE t.status = 'open'),
           extract(epoch FROM statement_timestamp() - min(t.created_at))::float8
    FROM tickets t
    WHERE t.tenant_id = :t AND t.status IN ('pending', 'open') {filters.sql()}
    GROUP BY 1 ORDER BY 1
    """  # noqa: S608 - fragments are constants, values are bound


async def get_backlog(conn: AsyncConnection, tenant_id: int, filters: Filters) -> Backlog:
    """Pending and open tickets per queue right now, and the oldest age. Read-only."""
    rows = (await conn.execute(text(_sql(filters)), {"t": tenant_id, **filters.params()})).all()
    labels = await label_groups(conn, tenant_id, "queue", [r[0] for r in rows])
    queues = tuple(
        BacklogRow(**g.model_dump(), pending=int(r[1]), open=int(r[2]), oldest_age_s=float(r[3]))
        for g, r in zip(labels, rows, strict=True)
    )
    return Backlog(
        pending=sum(q.pending for q in queues),
        open=sum(q.open for q in queues),
        oldest_age_s=max((q.oldest_age_s for q in queues), default=None),
        queues=queues,
    )
