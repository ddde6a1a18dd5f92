"""Sends through the integration API: a client, a tenant, and the send actor spied on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from api import integration
from tests.api.auth_helpers import Spy, Tenant, build_app, http_client, new_tenant, settings_for


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Spy:
    spy = Spy()
    monkeypatch.setattr(integration, "send_message", spy)
    monkeypatch.setattr(integration, "publish_outbox", Spy())
    return spy


@pytest.fixture
async def http(
    db: AsyncEngine, redis_url: str, queue_prefix: str
) -> AsyncIterator[httpx.AsyncClient]:
    redis = aioredis.from_url(redis_url)
    app = build_app(db, redis, settings_for(queue_prefix))
    async with http_client(app) as client:
        yield client
    await redis.aclose()


@pytest.fixture
async def tenant(db: AsyncEngine) -> Tenant:
    return await new_tenant(db)
