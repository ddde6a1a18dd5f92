"""The services a run uses: a fresh bench database, a seeded channel, namespaced Redis keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import redis

from adapters.base import ChannelSecrets
from bench.payloads import APP_SECRET, PHONE_NUMBER_ID
from engine.db import apply_schema, create_db_engine, system_tx
from engine.events import ChannelConfig, ChannelType
from engine.store.channels import insert_channel
from engine.store.tenants import insert_tenant

REDIS_SCAN_LIMIT = 200_000


class BenchError(Exception):
    """The benchmark could not measure what it set out to; the message says why."""


@dataclass(frozen=True)
class Services:
    pg_server: str  # user@host:port
    redis_url: str
    database: str = "flowdesk_bench"

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://{self.pg_server}/{database or self.database}"


def fresh_database(services: Services) -> None:
    """Drop and recreate the bench database and apply schema.sql."""
    try:
        with psycopg.connect(services.dsn("postgres"), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{services.database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{services.database}"')
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL at {services.pg_server} unavailable: {exc}") from exc
    apply_schema(services.dsn())


def seed_channel(services: Services, config: ChannelConfig | None = None) -> int:
    """One tenant with one WhatsApp channel whose app secret signs the generated bodies.

    `config` defaults to an API base URL nothing listens on: the inbound runs send nothing.
    """
    engine = create_db_engine(services.dsn().replace("postgresql://", "postgresql+psycopg://"))
    try:
        with system_tx(engine) as conn:
            tenant_id = insert_tenant(conn, name="Bench")
            return insert_channel(
                conn,
                tenant_id=tenant_id,
                type=ChannelType.WHATSAPP,
                name="WhatsApp bench",
                external_id=PHONE_NUMBER_ID,
                config=config or ChannelConfig(api_base_url="http://127.0.0.1:9/v21.0"),
                secrets=ChannelSecrets(
                    access_token="bench-token",
                    app_secret=APP_SECRET,
                    verify_token="bench-verify-token",
                ),
            )
    finally:
        engine.dispose()


def scalar(services: Services, sql: str) -> int:
    """One integer from the bench database, read as the owner (row-level security aside)."""
    with psycopg.connect(services.dsn(), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql.encode()).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def rows(services: Services, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(services.dsn(), autocommit=True, connect_timeout=5) as conn:
        return [tuple(r) for r in conn.execute(sql.encode()).fetchall()]


def new_prefix(label: str) -> str:
    """A QUEUE_PREFIX no other run or test shares."""
    return f"fdbench-{uuid.uuid4().hex[:8]}-{label}"


def check_postgres(services: Services) -> None:
    try:
        with psycopg.connect(services.dsn("postgres"), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL at {services.pg_server} unavailable: {exc}") from exc


def check_redis(services: Services) -> None:
    try:
        redis.Redis.from_url(services.redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {services.redis_url} unavailable: {exc}") from exc


def delete_prefix(services: Services, prefix: str) -> int:
    """Delete the broker and bench keys under `prefix`; returns how many were removed."""
    client = redis.Redis.from_url(services.redis_url)
    keys = []
    for n, key in enumerate(client.scan_iter(f"{prefix}*", count=1000)):
        if n >= REDIS_SCAN_LIMIT:
            break
        keys.append(key)
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    return len(keys)
