"""Fixtures of the resource API tests (loaded with `pytest_plugins`): app client and tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.resources_helpers import Team, build_resources_app, make_team


@pytest.fixture
async def api(db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_resources_app(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as http:
        yield http


@pytest.fixture
async def team(db: AsyncEngine) -> Team:
    return await make_team(db)


@pytest.fixture
async def other(db: AsyncEngine) -> Team:
    """A second tenant, to prove the first never sees its rows."""
    return await make_team(db)
