"""Ops fixtures: an engine with an ops token, and people of each role."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from sqlalchemy import Engine

from actors.broker import bind_actors, build_broker
from actors.middleware import RetryPolicy
from engine.db import system_tx
from engine.security import hash_password
from engine.store.tenants import insert_tenant, insert_user
from tests.support.engines import EngineOf
from tests.support.harness import RunningEngine, running_engine
from tests.support.ops import DONE, FAILING, OPS_TOKEN, PASSWORD, People


@pytest.fixture
def people(clean_db: Engine) -> People:
    with system_tx(clean_db) as conn:
        tenant_id = insert_tenant(conn, name="Platform")
        for role in ("super", "agent"):
            insert_user(
                conn,
                tenant_id=tenant_id,
                name=role.title(),
                email=f"{role}@ops.example.com",
                password_hash=hash_password(PASSWORD),
                role=role,
            )
    return People(tenant_id, "super@ops.example.com", "agent@ops.example.com")


@pytest.fixture
def ops_engine(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> Iterator[RunningEngine]:
    """The web app and a worker on Redis, with OPS_TOKEN set."""
    FAILING.clear()
    DONE.clear()
    with running_engine(
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        OPS_TOKEN=OPS_TOKEN,
    ) as running:
        yield running


@pytest.fixture
def broker(redis_url: str, queue_prefix: str) -> Iterator[dramatiq.Broker]:
    """A Redis broker under the test's prefix, every actor bound to it (nothing consumes)."""

    def refuse(_: object) -> None:
        raise AssertionError("nothing is processed here")

    b = build_broker(
        redis_url=redis_url,
        amqp_url=None,
        namespace=queue_prefix,
        policy=RetryPolicy(),
        recorder=refuse,
    )
    bind_actors(b)
    yield b
    b.close()


@pytest.fixture
def idle_engine(engine_of: EngineOf, clean_db: Engine) -> RunningEngine:
    """The web app on Redis with no worker: messages stay where they are put."""
    return engine_of(start_worker=False, OPS_TOKEN=OPS_TOKEN)
