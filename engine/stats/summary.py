"""One tenant's statistics at a glance: what the CLI prints and the console page draws."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from engine.queries.common import View
from engine.stats.agents import FirstContactReport, get_first_contact_resolution
from engine.stats.backlog import Backlog, get_backlog
from engine.stats.period import Filters, GroupBy, Period
from engine.stats.timing import TimingReport, get_timing
from engine.stats.volume import VolumeRow, get_volume


class Summary(View):
    tenant_id: int
    group_by: GroupBy
    volume: tuple[VolumeRow, ...]
    first_response: TimingReport
    resolution: TimingReport
    first_contact: FirstContactReport
    backlog: Backlog


async def get_summary(
    conn: AsyncConnection, tenant_id: int, period: Period, group_by: GroupBy = "day"
) -> Summary:
    """Volume by `group_by`, response and resolution times, FCR and the backlog. Read-only."""
    everything = Filters()
    return Summary(
        tenant_id=tenant_id,
        group_by=group_by,
        volume=tuple(await get_volume(conn, tenant_id, period, group_by, everything)),
        first_response=await get_timing(conn, tenant_id, period, "first_response", everything),
        resolution=await get_timing(conn, tenant_id, period, "resolution", everything),
        first_contact=await get_first_contact_resolution(conn, tenant_id, period, everything),
        backlog=await get_backlog(conn, tenant_id, everything),
    )


def format_duration(seconds: float | None) -> str:
    """A short human duration: 45s, 12m30s, 3h05m, 2d04h; "-" for none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
