"""Shared fixtures: a real PostgreSQL database and a real Redis, isolated per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis
from sqlalchemy import Engine, text

from engine.db import apply_schema, create_db_engine

pytest_plugins = ["tests.support.engines"]  # engine_of

PG_SERVER = os.environ.get("FLOWDESK_TEST_PG", "postgres@127.0.0.1:5432")
REDIS_SERVER = os.environ.get("FLOWDESK_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(what: str, exc: Exception) -> None:
    """Skip on a laptop without the service; fail in CI, where it must be there."""
    message = f"{what} unavailable: {exc}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def fresh_database(name: str) -> str:
    """Drop and recreate database `name`, apply schema.sql, return its SQLAlchemy URL."""
    try:
        with psycopg.connect(
            f"postgresql://{PG_SERVER}/postgres", autocommit=True, connect_timeout=3
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    url = f"postgresql+psycopg://{PG_SERVER}/{name}"
    apply_schema(url)
    return url


@pytest.fixture(scope="session")
def database_url() -> str:
    return fresh_database(f"flowdesk_test_{os.getpid()}")


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url, pool_size=4)
    yield engine
    engine.dispose()


_TABLES_TO_KEEP = {"schema_migrations"}


@pytest.fixture
def clean_db(db: Engine, database_url: str) -> Engine:
    """Every tenant row removed before the test (the schema stays)."""
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
            if r[0] not in _TABLES_TO_KEEP
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    return db


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    return REDIS_SERVER


@pytest.fixture
def queue_prefix(redis_url: str) -> Iterator[str]:
    """A namespace of broker keys no other test shares; its keys are deleted afterwards."""
    prefix = f"fdtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


def count(db: Engine, sql: str, **params: object) -> int:
    """A scalar from a system-scoped query (tests look across tenants on purpose)."""
    from engine.db import system_tx

    with system_tx(db) as conn:
        return int(conn.execute(text(sql), params).scalar_one())
