"""Fixtures of the routing tests: an in-process API over the session database, a stub broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.broker import bind_actors
from engine.db import create_async_db_engine
from tests.api.access_helpers import build_app
from tests.routing.world import Desk, new_desk


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def desk(db: Engine) -> Desk:
    return new_desk(db)


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    stub = StubBroker()
    bind_actors(stub)
    yield stub
    stub.close()


@pytest.fixture
async def adb(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_db_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(adb: AsyncEngine, broker: StubBroker) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(adb))
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as http:
        yield http
