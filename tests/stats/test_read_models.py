"""Each statistic on the hand-checkable world (tests/stats/world.py), worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.db import async_tenant_tx
from engine.stats import timing
from engine.stats.agents import get_agents, get_first_contact_resolution
from engine.stats.backlog import get_backlog
from engine.stats.campaigns import get_campaign_results
from engine.stats.period import Filters, Period
from engine.stats.timing import get_timing
from engine.stats.volume import get_volume
from tests.stats.world import World

pytestmark = pytest.mark.anyio
MAY = Period(first=date(2024, 5, 1), last=date(2024, 5, 2), time_zone="America/Sao_Paulo")
ALL = Filters()


def _table(rows: list) -> list[tuple]:  # type: ignore[type-arg]
    return [(r.label, r.inbound, r.outbound, r.tickets_created) for r in rows]


async def test_volume_by_channel_counts_the_local_days_only(adb: AsyncEngine, world: World) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        rows = await get_volume(conn, world.tenant_a, MAY, "channel", ALL)

    # T4's message at 00:00 Friday local and T6 (Tuesday 23:00 local) are outside.
    assert _table(rows) == [("WhatsApp Sales", 3, 5, 4), ("Telegram", 4, 1, 2)]
    assert [r.id for r in rows] == [world.whatsapp, world.telegram]


async def test_volume_by_day_uses_the_tenants_time_zone(adb: AsyncEngine, world: World) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        rows = await get_volume(conn, world.tenant_a, MAY, "day", ALL)

    # T3 came in at 02:00 UTC on the 2nd: 23:00 on the 1st in Sao Paulo.
    assert _table(rows) == [("2024-05-01", 4, 5, 4), ("2024-05-02", 3, 1, 2)]
    assert [r.day for r in rows] == [date(2024, 5, 1), date(2024, 5, 2)]


async def test_volume_by_queue_and_agent_follows_the_ticket(adb: AsyncEngine, world: World) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        queues = await get_volume(conn, world.tenant_a, MAY, "queue", ALL)
        agents = await get_volume(conn, world.tenant_a, MAY, "agent", ALL)
        sales_only = await get_volume(
            conn, world.tenant_a, MAY, "channel", Filters(queue_id=world.sales)
        )

    assert _table(queues) == [("No queue", 2, 2, 2), ("Sales", 5, 4, 4)]
    assert _table(agents) == [("Unassigned", 2, 1, 2), ("Ana", 4, 3, 3), ("Bruno", 1, 2, 1)]
    assert _table(sales_only) == [("WhatsApp Sales", 3, 4, 3), ("Telegram", 2, 0, 1)]


async def test_first_response_wall_clock_and_business_hours(adb: AsyncEngine, world: World) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        report = await get_timing(
            conn, world.tenant_a, MAY, "first_response", ALL, group_by="agent"
        )

    # T1 600 s, T2 1800 s, T3 1200 s, T5 300 s; T7 (campaign, no inbound) is not counted.
    o = report.overall
    assert o.tickets == 4
    assert (o.average_s, o.p50_s, o.p90_s) == pytest.approx((975, 900, 1620))
    assert [(g.label, g.tickets, g.average_s) for g in report.groups] == [
        ("Ana", 3, 700),
        ("Bruno", 1, 1800),
    ]
    # Open Mon-Fri 09:00-18:00: T3 (23:00) and T5 (07:00) were answered while closed.
    b = report.business_hours
    assert b is not None
    assert (b.tickets, b.complete) == (4, True)
    assert (b.average_s, b.p50_s, b.p90_s) == pytest.approx((600, 300, 1440))


async def test_resolution_counts_tickets_closed_in_the_period(
    adb: AsyncEngine, world: World
) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        report = await get_timing(conn, world.tenant_a, MAY, "resolution", ALL, group_by="day")

    # T1 3600 s, T2 86400 s, T5 3600 s.
    o = report.overall
    assert o.tickets == 3
    assert (o.average_s, o.p50_s, o.p90_s) == pytest.approx((31200, 3600, 69840))
    assert [(g.label, g.tickets) for g in report.groups] == [("2024-05-01", 1), ("2024-05-02", 2)]
    # In business hours: T1 3600, T2 7 h Wednesday + 2 h Thursday, T5 closed before opening.
    b = report.business_hours
    assert b is not None
    assert (b.average_s, b.p50_s, b.p90_s) == pytest.approx((12000, 3600, 26640))


async def test_agents_workload(adb: AsyncEngine, world: World) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        rows = await get_agents(conn, world.tenant_a, MAY, ALL)

    table = [
        (r.label, r.tickets_assigned, r.tickets_closed, r.messages_sent, r.first_response_average_s)
        for r in rows
    ]
    assert table == [("Unassigned", 2, 1, 0, None), ("Ana", 3, 2, 4, 700), ("Bruno", 1, 1, 1, 1800)]


async def test_first_contact_resolution(adb: AsyncEngine, world: World) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        report = await get_first_contact_resolution(
            conn, world.tenant_a, MAY, ALL, group_by="agent"
        )

    # T1 yes; T2 transferred with two agents writing; T5 reopened.
    assert (report.overall.closed, report.overall.first_contact) == (3, 1)
    assert report.overall.rate == pytest.approx(1 / 3)
    assert [(g.label, g.closed, g.first_contact) for g in report.groups] == [
        ("Ana", 2, 1),
        ("Bruno", 1, 0),
    ]


async def test_backlog_now(adb: AsyncEngine, world: World) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        backlog = await get_backlog(conn, world.tenant_a, ALL)

    assert (backlog.pending, backlog.open) == (1, 1)  # B's three open tickets are not A's
    assert [(q.label, q.pending, q.open) for q in backlog.queues] == [
        ("No queue", 0, 1),
        ("Sales", 1, 0),
    ]
    no_queue, sales = backlog.queues
    assert no_queue.oldest_age_s - sales.oldest_age_s == pytest.approx(18 * 3600, abs=1)
    assert backlog.oldest_age_s == no_queue.oldest_age_s


async def test_campaign_results(adb: AsyncEngine, world: World) -> None:
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        results = await get_campaign_results(conn, world.tenant_a, MAY, ALL)

    (promo,) = results  # April's campaign is outside the period, B's is another tenant's
    assert promo.id == world.campaign
    counts = (promo.contacts, promo.read, promo.delivered, promo.sent, promo.failed, promo.skipped)
    assert counts == (5, 1, 1, 1, 1, 1)
    assert promo.pending == promo.claimed == 0


async def test_another_tenant_sees_only_its_own(adb: AsyncEngine, world: World) -> None:
    b_may = Period(first=date(2024, 5, 1), last=date(2024, 5, 2), time_zone="UTC")
    async with async_tenant_tx(adb, world.tenant_b) as conn:
        volume = await get_volume(conn, world.tenant_b, b_may, "agent", ALL)
        timing = await get_timing(conn, world.tenant_b, b_may, "first_response", ALL)
        # Asking for A's id inside B's transaction finds nothing: row-level security.
        leaked = await get_volume(conn, world.tenant_a, MAY, "channel", ALL)

    assert _table(volume) == [("Zed", 3, 3, 3)]
    assert (timing.overall.tickets, timing.overall.average_s) == (3, 60)
    assert timing.business_hours is None  # B has no business hours
    assert leaked == []


async def test_business_hours_over_a_capped_number_of_tickets_say_so(
    adb: AsyncEngine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timing, "BUSINESS_HOURS_MAX_TICKETS", 2)
    async with async_tenant_tx(adb, world.tenant_a) as conn:
        report = await get_timing(conn, world.tenant_a, MAY, "first_response", ALL)

    assert report.overall.tickets == 4  # wall-clock figures still cover every ticket
    b = report.business_hours
    assert b is not None
    assert (b.tickets, b.complete) == (2, False)
    # The two most recently created: T4 is unanswered, so T5 (0 s) and T3 (0 s).
    assert b.average_s == 0
