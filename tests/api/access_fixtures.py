"""Fixtures of the access matrices (loaded with `pytest_plugins`): one app per test module.

Named `matrix_*` so that they never stand in for another module's `http` or `broker`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.broker import bind_actors
from engine.db import create_async_db_engine
from tests.api.access_helpers import build_app
from tests.api.conftest import DB_URL
from tests.api.helpers import Seed


@pytest.fixture(scope="module")
def matrix_broker() -> Iterator[StubBroker]:
    stub = StubBroker()
    bind_actors(stub)  # sends and outbox events are enqueued here, never processed
    yield stub
    stub.close()


@pytest.fixture(scope="module")
async def matrix_db(seed: Seed) -> AsyncIterator[AsyncEngine]:
    """The API tests' database (created by the session's `seed`), for the whole module."""
    db = create_async_db_engine(DB_URL, pool_size=4)
    yield db
    await db.dispose()


@pytest.fixture(scope="module")
async def matrix_http(
    matrix_db: AsyncEngine, matrix_broker: StubBroker
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(matrix_db))
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as client:
        yield client
