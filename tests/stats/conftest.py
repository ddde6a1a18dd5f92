"""Fixtures of the statistics tests: a database seeded once with the hand-checkable world."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.broker import bind_actors
from engine import security
from engine.db import create_async_db_engine, create_db_engine, system_tx
from engine.security import Role
from tests.api.access_helpers import build_app
from tests.api.resources_helpers import Team
from tests.conftest import fresh_database
from tests.stats.world import World, seed_world


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def stats_url() -> str:
    return fresh_database(f"flowdesk_test_stats_{os.getpid()}")


@pytest.fixture(scope="session")
def world(stats_url: str) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "BCRYPT_ROUNDS", 4)
        engine = create_db_engine(stats_url, pool_size=1)
        try:
            with system_tx(engine) as conn:
                seeded = seed_world(conn)
        finally:
            engine.dispose()
    yield seeded


@pytest.fixture
async def adb(stats_url: str, world: World) -> AsyncIterator[AsyncEngine]:
    engine = create_async_db_engine(stats_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def http(adb: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    broker = StubBroker()
    bind_actors(broker)
    transport = httpx.ASGITransport(app=build_app(adb))
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as client:
        yield client
    broker.close()


def token_for(world: World, role: Role) -> dict[str, str]:
    """A bearer header of tenant A's user with `role`."""
    team = Team(world.tenant_a, world.users, world.whatsapp, world.telegram, "Stats A")
    return team.as_(role)
