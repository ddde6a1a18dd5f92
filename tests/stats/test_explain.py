"""Every statistics query on 1,000,000 messages: no sequential scan of messages or tickets.

The statements are the ones the read models really send, captured as they run for one tenant
of eight over a realistic 30-day period, then EXPLAINed with the same parameters under the
same row-level security.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from engine.db import async_tenant_tx, create_async_db_engine
from engine.stats.agents import get_agents, get_first_contact_resolution
from engine.stats.backlog import get_backlog
from engine.stats.campaigns import get_campaign_results
from engine.stats.period import Filters, Period
from engine.stats.timing import get_timing
from engine.stats.volume import get_volume
from tests.conftest import PG_SERVER, count, fresh_database
from tests.stats.big_world import MESSAGES_PER_TICKET, TICKETS, seed_big_world

# Seeding a million rows takes one to three minutes on a shared machine.
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]
GUARDED = {"messages", "tickets"}
TENANT = 3
JUNE = Period(first=date(2024, 5, 20), last=date(2024, 6, 18), time_zone="America/Sao_Paulo")
CHANNEL = Filters(channel_id=(TENANT - 1) * 3 + 2)
QUEUE = Filters(queue_id=(TENANT - 1) * 3 + 1)
Read = Callable[[AsyncConnection], Awaitable[Any]]
READS: dict[str, Read] = {
    "volume by channel": lambda c: get_volume(c, TENANT, JUNE, "channel", Filters()),
    "volume by day, one channel": lambda c: get_volume(c, TENANT, JUNE, "day", CHANNEL),
    "volume by queue": lambda c: get_volume(c, TENANT, JUNE, "queue", Filters()),
    "volume by agent, one queue": lambda c: get_volume(c, TENANT, JUNE, "agent", QUEUE),
    "first response by agent": lambda c: get_timing(
        c, TENANT, JUNE, "first_response", Filters(), group_by="agent"
    ),
    "resolution by day, one queue": lambda c: get_timing(
        c, TENANT, JUNE, "resolution", QUEUE, group_by="day"
    ),
    "agents": lambda c: get_agents(c, TENANT, JUNE, Filters()),
    "agents, one queue": lambda c: get_agents(c, TENANT, JUNE, QUEUE),
    "first-contact resolution by channel": lambda c: get_first_contact_resolution(
        c, TENANT, JUNE, Filters(), group_by="channel"
    ),
    "backlog": lambda c: get_backlog(c, TENANT, Filters()),
    "backlog, one queue": lambda c: get_backlog(c, TENANT, QUEUE),
    "campaigns": lambda c: get_campaign_results(c, TENANT, JUNE, Filters()),
}


@pytest.fixture(scope="module")
def big_url() -> Iterator[str]:
    name = f"flowdesk_test_stats_big_{os.getpid()}"
    url = fresh_database(name)
    seed_big_world(url.replace("postgresql+psycopg://", "postgresql://", 1))
    yield url
    with psycopg.connect(f"postgresql://{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a few hundred MB


@pytest.fixture
async def big_db(big_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_db_engine(big_url, pool_size=1)
    yield engine
    await engine.dispose()


def seq_scans(plan: dict[str, Any]) -> Iterator[str]:
    """Relations read by a Seq Scan anywhere in the plan tree."""
    if plan.get("Node Type") == "Seq Scan":
        yield str(plan.get("Relation Name"))
    for child in plan.get("Plans", []):
        yield from seq_scans(child)


async def captured(db: AsyncEngine, read: Read) -> list[tuple[str, Any]]:
    """The statements `read` sends (with their parameters), other than the tenant setting."""
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if "set_config" not in statement:
            sent.append((statement, params))

    event.listen(db.sync_engine, "before_cursor_execute", record)
    try:
        async with async_tenant_tx(db, TENANT) as conn:
            await read(conn)
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", record)
    return sent


async def plan_of(db: AsyncEngine, statement: str, params: Any) -> dict[str, Any]:
    """The planner's plan of `statement` as the tenant would run it."""
    async with async_tenant_tx(db, TENANT) as conn:
        raw = (await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params)).scalar()
    plan: dict[str, Any] = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return plan


async def test_the_dataset_has_a_million_messages(big_url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(big_url)
    try:
        assert count(engine, "SELECT count(*) FROM messages") == TICKETS * MESSAGES_PER_TICKET
        assert count(engine, "SELECT count(DISTINCT tenant_id) FROM messages") == 8
    finally:
        engine.dispose()


async def test_the_check_sees_a_sequential_scan(big_db: AsyncEngine) -> None:
    async def unindexed(conn: AsyncConnection) -> None:
        await conn.execute(text("SELECT count(*) FROM messages WHERE body IS NULL"))

    (statement, params), *_ = await captured(big_db, unindexed)

    assert "messages" in set(seq_scans(await plan_of(big_db, statement, params)))


@pytest.mark.parametrize("name", list(READS))
async def test_no_sequential_scan_of_messages_or_tickets(big_db: AsyncEngine, name: str) -> None:
    statements = await captured(big_db, READS[name])
    assert statements, f"{name}: nothing was sent"

    for statement, params in statements:
        plan = await plan_of(big_db, statement, params)
        scanned = set(seq_scans(plan)) & GUARDED
        assert not scanned, f"{name}: Seq Scan on {scanned} in\n{statement}\n{plan}"
