"""Fixtures for the API tests: a dedicated seeded PostgreSQL database and an in-process client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace

import httpx
import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api import auth, tickets
from api.errors import ApiError, api_error_handler, validation_error_handler
from api.resources import contacts
from engine import security
from engine.db import apply_schema, create_async_db_engine, create_db_engine, system_tx
from tests.api.helpers import SETTINGS, Seed, seed_database

PG_SERVER = "postgres@127.0.0.1:5432"
DB_NAME = f"flowdesk_test_api_{os.getpid()}"
DB_URL = f"postgresql+psycopg://{PG_SERVER}/{DB_NAME}"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _recreate_database() -> None:
    try:
        admin = psycopg.connect(
            f"postgresql://{PG_SERVER}/postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {PG_SERVER} is unreachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB_NAME}")


@pytest.fixture(scope="session")
def seed() -> Iterator[Seed]:
    """A fresh database with the schema and the seed rows; bcrypt cost lowered for speed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "BCRYPT_ROUNDS", 4)
        _recreate_database()
        apply_schema(DB_URL)
        engine = create_db_engine(DB_URL, pool_size=1)
        try:
            with system_tx(engine) as conn:
                seeded = seed_database(conn)
        finally:
            engine.dispose()
        yield seeded


@pytest.fixture
async def db(seed: Seed) -> AsyncIterator[AsyncEngine]:
    """An async engine bound to this test's event loop."""
    engine = create_async_db_engine(DB_URL, pool_size=2)
    yield engine
    await engine.dispose()


def build_app(db: AsyncEngine) -> Starlette:
    """The routes under test wired the way api/app.py wires them."""
    app = Starlette(
        routes=[*auth.routes, *tickets.router.routes(), *contacts.router.routes()],
        exception_handlers={
            ApiError: api_error_handler,
            ValidationError: validation_error_handler,
        },
    )
    app.state.deps = SimpleNamespace(settings=SETTINGS, db=db)
    return app


@pytest.fixture
async def client(db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as http:
        yield http
