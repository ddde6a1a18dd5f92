"""Property-based requests from the OpenAPI document: no operation may answer 5xx to anything.

Runs against the whole app (create_app, its lifespan, a real PostgreSQL and Redis) over ASGI,
as a tenant admin, on a database of its own: generated requests create, change and delete
rows, so the shared seed of the other API tests is left alone. Every documented operation is
exercised, side effects included; the broker is a stub, so nothing queued is ever run.

Two things keep side effects from breaking the run itself: the caller is an admin of its own
with an id generated ids do not reach (so PATCH/DELETE /users/{id} and revoke-sessions never
demote, delete or sign out the caller), and each request gets a token for the caller's
current token_version (so POST /auth/logout and friends cannot revoke the rest of the run).
Schemathesis' coverage phase (every boundary of every parameter, plus each unexpected
method) is left off to stay within a minute; the positive and negative generation it runs
reaches the same validation paths.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
import schemathesis
from dramatiq.brokers.stub import StubBroker
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from sqlalchemy import Engine, text

from actors.broker import bind_actors
from api.app import API_ROUTERS, EXTRA_OPENAPI_PATHS, create_app
from api.docs import openapi_document
from config import Settings
from engine import security
from engine.db import create_db_engine, system_tx
from engine.runtime import Runtime
from engine.security import issue_access_token
from tests.api.helpers import SETTINGS, seed_database
from tests.conftest import fresh_database

DB_NAME = f"flowdesk_test_schemathesis_{os.getpid()}"
JWT_SECRET = SETTINGS.JWT_SECRET
CALLER_ID = 7_777_777_777  # far from the ids generated requests name


@pytest.fixture(scope="module")
def seeded(redis_url: str) -> Iterator[tuple[Engine, int]]:
    """Its own database, seeded, plus the caller: an admin of tenant A. Dropped afterwards."""
    url = fresh_database(DB_NAME)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "BCRYPT_ROUNDS", 4)
        engine = create_db_engine(url, pool_size=1)
        with system_tx(engine) as conn:
            seed = seed_database(conn)
            conn.execute(
                text(
                    "INSERT INTO users (id, tenant_id, name, email, password_hash, role)"
                    " VALUES (:id, :t, 'Schemathesis', 'schemathesis@a.test', 'x', 'admin')"
                ),
                {"id": CALLER_ID, "t": seed.a.tenant_id},
            )
    yield engine, seed.a.tenant_id
    engine.dispose()
    with psycopg.connect(url.replace("+psycopg", "").replace(DB_NAME, "postgres")) as admin:
        admin.autocommit = True
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


# The same document GET /api/v1/openapi.json serves; loading it needs no app or database.
schema = schemathesis.openapi.from_dict(openapi_document(API_ROUTERS, EXTRA_OPENAPI_PATHS))
schema.config.phases.coverage.enabled = False
# The caller's real token goes on every request; generated Authorization values would only
# replace it (missing and bad tokens are covered by the API's own tests).
schema.config.generation.update(with_security_parameters=False)


@pytest.fixture(scope="module")
def served(seeded: tuple[Engine, int], redis_url: str) -> Iterator[asgi.ASGIClient]:
    """An in-process client of the whole app, its lifespan started (and stopped after)."""
    url = seeded[0].url.render_as_string(hide_password=False)
    prefix = f"fdtest-st-{uuid.uuid4().hex[:10]}"
    # Hundreds of requests a minute from one address: lift the API rate limits for this run.
    lifted = {
        "QUEUE_PREFIX": prefix,
        "API_RATE_PER_IP_PER_MIN": 1_000_000,
        "API_RATE_PER_TENANT_PER_MIN": 10_000_000,
    }
    settings = SETTINGS.model_copy(
        update={k: v for k, v in lifted.items() if k in Settings.model_fields}
    )
    broker = StubBroker()
    bind_actors(broker)
    runtime = Runtime(settings, url, redis_url, JWT_SECRET, None)
    with asgi.get_client(create_app(settings, runtime, broker)) as client:
        yield client
    asgi.shutdown_lifespans()  # closes the app's pools before the database is dropped
    broker.close()
    keys = redis.Redis.from_url(redis_url)
    for key in keys.scan_iter(f"{prefix}*"):
        keys.delete(key)
    keys.close()


def caller_headers(db: Engine, tenant_id: int) -> dict[str, str]:
    """A bearer token for the caller as it stands now (revocations bump token_version)."""
    with system_tx(db) as conn:
        version = conn.execute(
            text("SELECT token_version FROM users WHERE id = :id"), {"id": CALLER_ID}
        ).scalar_one()
    token = issue_access_token(
        user_id=CALLER_ID,
        tenant_id=tenant_id,
        role="admin",
        token_version=version,
        secret=JWT_SECRET,
        ttl_s=3_600,
    )
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(
    max_examples=10,
    derandomize=True,  # the same examples every run: a failure here reproduces
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: keeps a failing run short
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(
    case: Any, served: asgi.ASGIClient, seeded: tuple[Engine, int]
) -> None:
    headers = caller_headers(*seeded)
    response = case.call(session=served, base_url=served.base_url, headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
