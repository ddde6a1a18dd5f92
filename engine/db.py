"""PostgreSQL access: engines, tenant- and system-scoped transactions, schema application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from engine.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema.sql"
SCHEMA_VERSION = 12
APP_ROLE = "flowdesk_app"

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")
_SET_SYSTEM = text("SELECT set_config('app.scope', 'system', true)")


# True when this login may act as APP_ROLE (then it does: see _assume_app_role).
_MAY_ASSUME_APP_ROLE = (
    "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) "
    "AND pg_has_role(current_user, %s, 'MEMBER')"
)


def _assume_app_role(dbapi_conn: Any, _record: Any) -> None:
    """Act as the row-level-security-bound role when this login may.

    A superuser bypasses row-level security entirely, so the engine never acts as one.
    """
    cur = dbapi_conn.cursor()
    try:
        cur.execute(_MAY_ASSUME_APP_ROLE, (APP_ROLE, APP_ROLE))
        row = cur.fetchone()
        if row and row[0]:
            cur.execute(f"SET ROLE {APP_ROLE}")
    finally:
        cur.close()
    dbapi_conn.commit()


async def connect_inbox_writer(url: str, *, timeout_s: int = 5) -> psycopg.AsyncConnection[Any]:
    """A connection of its own for the web's inbox group commit.

    Autocommit, so each INSERT commits by itself in one round trip, and system scope for the
    whole session (a group commit spans tenants). Nothing else may run on it: every statement
    on it sees all tenants. Raises DatabaseUnavailableError when PostgreSQL cannot be reached.
    """
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=timeout_s
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"database unavailable: {type(exc).__name__}") from exc
    try:
        row = await (await conn.execute(_MAY_ASSUME_APP_ROLE, (APP_ROLE, APP_ROLE))).fetchone()
        if row and row[0]:
            await conn.execute(f"SET ROLE {APP_ROLE}")
        await conn.execute("SELECT set_config('app.scope', 'system', false)")
    except BaseException:
        await conn.close()
        raise
    return conn


def create_db_engine(url: str, *, pool_size: int = 10) -> Engine:
    """A pooled synchronous engine whose connections act under row-level security."""
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, future=True
    )
    event.listen(engine, "connect", _assume_app_role)
    return engine


def create_async_db_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The asyncio twin of create_db_engine, for the web process."""
    async_url = url.replace("postgresql+psycopg://", "postgresql+psycopg_async://", 1)
    engine = create_async_engine(
        async_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    event.listen(engine.sync_engine, "connect", _assume_app_role)
    return engine


@contextmanager
def tenant_tx(engine: Engine, tenant_id: int) -> Iterator[Connection]:
    """One transaction that can see only `tenant_id`'s rows."""
    with _translate_outage(), engine.begin() as conn:
        conn.execute(_SET_TENANT, {"tenant_id": str(tenant_id)})
        yield conn


@contextmanager
def system_tx(engine: Engine) -> Iterator[Connection]:
    """One transaction allowed to span tenants: routing, sweepers and operations only."""
    with _translate_outage(), engine.begin() as conn:
        conn.execute(_SET_SYSTEM)
        yield conn


def set_tenant(conn: Connection, tenant_id: int) -> None:
    """Narrow the current transaction to one tenant (used inside multi-tenant batches)."""
    conn.execute(_SET_TENANT, {"tenant_id": str(tenant_id)})
    conn.execute(text("SELECT set_config('app.scope', '', true)"))


def set_system(conn: Connection) -> None:
    """Widen the current transaction back to system scope."""
    conn.execute(_SET_SYSTEM)


@asynccontextmanager
async def async_system_tx(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    with _translate_outage():
        async with engine.begin() as conn:
            await conn.execute(_SET_SYSTEM)
            yield conn


@asynccontextmanager
async def async_tenant_tx(engine: AsyncEngine, tenant_id: int) -> AsyncIterator[AsyncConnection]:
    with _translate_outage():
        async with engine.begin() as conn:
            await conn.execute(_SET_TENANT, {"tenant_id": str(tenant_id)})
            yield conn


@contextmanager
def _translate_outage() -> Iterator[None]:
    """Lost or refused connections are the world's fault: make them retryable."""
    try:
        yield
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"database unavailable: {type(exc.orig).__name__}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailableError("database connection lost") from exc
        raise


def apply_schema(url: str) -> int:
    """Apply schema.sql in one transaction (idempotent); return the schema version."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(dsn) as conn:  # one transaction, committed on exit
            conn.execute(SCHEMA_PATH.read_text().encode())
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"database unavailable: {exc}") from exc
    assert row is not None
    return int(row[0])


def schema_version(engine: Engine) -> int | None:
    """The applied schema version, or None when the schema was never applied."""
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('schema_migrations') IS NOT NULL"))
        if not exists.scalar_one():
            return None
        value = conn.execute(text("SELECT max(version) FROM schema_migrations")).scalar_one()
        return None if value is None else int(value)
