"""Statistics of the caller's tenant: volume, response and resolution times, agents, backlog.

Periods are local days in the tenant's time zone (`from`..`to`, inclusive; by default the last
30 days), at most 366 days long. Supervisors and admins only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, TypeVar

from pydantic import ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import invalid_field
from api.framework import ApiRouter, Call, NoBody
from api.rbac import Permission
from api.resources.common import Frozen, RowId
from engine.queries.common import View
from engine.stats.agents import AgentRow, FirstContactReport, get_agents
from engine.stats.agents import get_first_contact_resolution as get_fcr
from engine.stats.backlog import Backlog, get_backlog
from engine.stats.campaigns import CampaignResult, get_campaign_results
from engine.stats.period import Filters, GroupBy, Period, PeriodError, resolve_period
from engine.stats.timing import Measure, TimingReport, get_timing
from engine.stats.volume import VolumeRow, get_volume

router = ApiRouter("stats")
R = TypeVar("R")


class PeriodQuery(Frozen):
    from_: Annotated[date | None, Field(alias="from", description="first local day")] = None
    to: Annotated[date | None, Field(description="last local day (inclusive)")] = None
    channel_id: RowId | None = None
    queue_id: RowId | None = None


class VolumeQuery(PeriodQuery):
    group_by: GroupBy = "day"


class GroupedQuery(PeriodQuery):
    group_by: GroupBy | None = None


class BacklogQuery(Frozen):
    channel_id: RowId | None = None
    queue_id: RowId | None = None


class PeriodOut(View):
    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True)

    from_: date = Field(serialization_alias="from")
    to: date
    time_zone: str


class VolumeOut(View):
    period: PeriodOut
    group_by: GroupBy
    groups: tuple[VolumeRow, ...]


class TimingOut(View):
    period: PeriodOut
    report: TimingReport


class AgentsOut(View):
    period: PeriodOut
    agents: tuple[AgentRow, ...]


class FirstContactOut(View):
    period: PeriodOut
    report: FirstContactReport


class CampaignsOut(View):
    period: PeriodOut
    campaigns: tuple[CampaignResult, ...]


PQ = TypeVar("PQ", bound=PeriodQuery)


def _filters(q: PeriodQuery | BacklogQuery) -> Filters:
    return Filters(channel_id=q.channel_id, queue_id=q.queue_id)


async def _in_period(
    call: Call[NoBody, PQ],
    read: Callable[[AsyncConnection, Period], Awaitable[R]],
) -> tuple[PeriodOut, R]:
    """Resolve the period in the tenant's time zone and run `read` in one transaction."""
    q = call.query
    async with call.tx() as conn:
        try:
            period = await resolve_period(conn, call.tenant_id, q.from_, q.to)
        except PeriodError as exc:
            raise invalid_field(exc.field, exc.message, where="query parameter") from None
        result = await read(conn, period)
    return PeriodOut(from_=period.first, to=period.last, time_zone=period.time_zone), result


def _timing(measure: Measure) -> Callable[[Call[NoBody, GroupedQuery]], Awaitable[TimingOut]]:
    async def handler(call: Call[NoBody, GroupedQuery]) -> TimingOut:
        q = call.query
        period, report = await _in_period(
            call,
            lambda conn, p: get_timing(
                conn, call.tenant_id, p, measure, _filters(q), group_by=q.group_by
            ),
        )
        return TimingOut(period=period, report=report)

    handler.__name__ = f"stats_{measure}"  # the route name and OpenAPI operationId
    handler.__doc__ = f"Average, median and 90th percentile of {measure.replace('_', ' ')} time."
    return handler


@router.get(
    "/api/v1/stats/volume",
    Permission.STATS_READ,
    query=VolumeQuery,
    response=VolumeOut,
    summary="Messages and tickets per channel, queue, agent or day",
)
async def stats_volume(call: Call[NoBody, VolumeQuery]) -> VolumeOut:
    """Inbound and outbound messages and tickets created per group. Messages count toward their
    ticket's current queue and agent."""
    q = call.query
    period, rows = await _in_period(
        call, lambda conn, p: get_volume(conn, call.tenant_id, p, q.group_by, _filters(q))
    )
    return VolumeOut(period=period, group_by=q.group_by, groups=tuple(rows))


stats_first_response = router.get(
    "/api/v1/stats/first-response",
    Permission.STATS_READ,
    query=GroupedQuery,
    response=TimingOut,
    summary="First response time: average, median, 90th percentile",
)(_timing("first_response"))
stats_resolution = router.get(
    "/api/v1/stats/resolution",
    Permission.STATS_READ,
    query=GroupedQuery,
    response=TimingOut,
    summary="Resolution time: average, median, 90th percentile",
)(_timing("resolution"))


@router.get(
    "/api/v1/stats/agents",
    Permission.STATS_READ,
    query=PeriodQuery,
    response=AgentsOut,
    summary="Tickets and messages per agent",
)
async def stats_agents(call: Call[NoBody, PeriodQuery]) -> AgentsOut:
    """Per agent: tickets assigned and closed, messages written, average first response."""
    period, rows = await _in_period(
        call, lambda conn, p: get_agents(conn, call.tenant_id, p, _filters(call.query))
    )
    return AgentsOut(period=period, agents=tuple(rows))


@router.get(
    "/api/v1/stats/fcr",
    Permission.STATS_READ,
    query=GroupedQuery,
    response=FirstContactOut,
    summary="First-contact resolution rate",
)
async def stats_fcr(call: Call[NoBody, GroupedQuery]) -> FirstContactOut:
    """Share of tickets closed in the period that were never reopened or transferred and were
    answered by at most one agent."""
    q = call.query
    period, report = await _in_period(
        call, lambda conn, p: get_fcr(conn, call.tenant_id, p, _filters(q), group_by=q.group_by)
    )
    return FirstContactOut(period=period, report=report)


@router.get(
    "/api/v1/stats/backlog",
    Permission.STATS_READ,
    query=BacklogQuery,
    response=Backlog,
    summary="Pending and open tickets per queue now",
)
async def stats_backlog(call: Call[NoBody, BacklogQuery]) -> Backlog:
    """Live tickets per queue right now and how long the oldest has waited."""
    async with call.tx() as conn:
        return await get_backlog(conn, call.tenant_id, _filters(call.query))


@router.get(
    "/api/v1/stats/campaigns",
    Permission.STATS_READ,
    query=PeriodQuery,
    response=CampaignsOut,
    summary="Contacts per send status of each campaign",
)
async def stats_campaigns(call: Call[NoBody, PeriodQuery]) -> CampaignsOut:
    """Campaigns created in the period (newest 200), with their contacts per send status."""
    period, rows = await _in_period(
        call, lambda conn, p: get_campaign_results(conn, call.tenant_id, p, _filters(call.query))
    )
    return CampaignsOut(period=period, campaigns=tuple(rows))
