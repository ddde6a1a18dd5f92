"""Sign-in tests: an app with tight lock-out limits, a client for it, a user to sign in as."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from config import Settings
from tests.api.auth_helpers import (
    User,
    build_app,
    http_client,
    new_tenant,
    new_user,
    settings_for,
)


@pytest.fixture
async def redis(redis_url: str, queue_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def settings(queue_prefix: str) -> Settings:
    return settings_for(
        queue_prefix, LOGIN_MAX_FAILURES_PER_ACCOUNT="3", LOGIN_MAX_FAILURES_PER_IP="8"
    )


@pytest.fixture
async def http(
    db: AsyncEngine, redis: aioredis.Redis, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(build_app(db, redis, settings)) as client:
        yield client


@pytest.fixture
async def user(db: AsyncEngine) -> User:
    return await new_user(db, (await new_tenant(db)).id)
