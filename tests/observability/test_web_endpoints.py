"""The web's operations endpoints on real PostgreSQL, Redis and RabbitMQ: /readyz (also with
dependencies gone), the rate limiter leaving probes alone, and the WebSocket gauge."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from dramatiq.brokers.stub import StubBroker
from prometheus_client import REGISTRY
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from api.realtime import CLOSE_BAD_REQUEST
from config import load_settings
from engine.db import SCHEMA_VERSION
from engine.runtime import Runtime
from tests.conftest import PG_SERVER
from tests.support.harness import free_port

AMQP_URL = os.environ.get("FLOWDESK_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
SECRET = "a-test-secret-of-enough-length-for-any-rule"


def _client(database_url: str, redis_url: str, **env: str) -> TestClient:
    settings = load_settings(
        {
            "DATABASE_URL": database_url.replace("postgresql+psycopg://", "postgresql://"),
            "REDIS_URI": redis_url,
            "JWT_SECRET": SECRET,
            **env,
        }
    )
    runtime = Runtime(settings, database_url, redis_url, SECRET, None)
    return TestClient(create_app(settings, runtime, StubBroker()))


def _readyz(database_url: str, redis_url: str, **env: str) -> tuple[int, dict[str, Any]]:
    with _client(database_url, redis_url, **env) as client:
        response = client.get("/readyz")
    return response.status_code, response.json()


def _closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


@pytest.fixture
def stale_database() -> Iterator[str]:
    """A database whose schema is older than this code's."""
    name = f"flowdesk_stale_{os.getpid()}"
    with psycopg.connect(f"postgresql://{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://{PG_SERVER}/{name}"
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute("CREATE TABLE schema_migrations (version int PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES (3)")
        conn.execute("GRANT SELECT ON schema_migrations TO flowdesk_app")  # the engine's role
    yield url
    with psycopg.connect(f"postgresql://{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_ready_when_everything_answers(database_url: str, redis_url: str) -> None:
    status, body = _readyz(database_url, redis_url)
    assert status == 200
    assert body == {
        "status": "ready",
        "checks": {
            "database": {"ok": True, "schema_version": SCHEMA_VERSION},
            "redis": {"ok": True},
            "broker": {"ok": True, "kind": "redis"},
        },
    }


def test_redis_gone_is_503_naming_redis_and_the_broker(database_url: str) -> None:
    status, body = _readyz(database_url, f"redis://127.0.0.1:{_closed_port()}/0")
    assert status == 503
    assert body["status"] == "not_ready"
    checks = body["checks"]
    assert checks["database"]["ok"] is True
    for name in ("redis", "broker"):
        assert checks[name]["ok"] is False
        assert "ConnectionError" in checks[name]["reason"]


def test_database_gone_is_503_naming_the_database(redis_url: str) -> None:
    gone = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/flowdesk"
    status, body = _readyz(gone, redis_url)
    assert status == 503
    assert body["checks"]["database"]["ok"] is False
    assert "OperationalError" in body["checks"]["database"]["reason"]
    assert body["checks"]["redis"] == {"ok": True}


def test_metrics_still_answer_with_the_database_gone(redis_url: str) -> None:
    gone = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/flowdesk"
    with _client(gone, redis_url) as client:
        response = client.get("/metrics")

    assert response.status_code == 200, response.text
    assert "flowdesk_webhooks_received_total" in response.text  # the process's own metrics
    assert "flowdesk_queue_depth{" not in response.text  # the overview could not be read


def test_old_schema_is_not_ready(stale_database: str, redis_url: str) -> None:
    status, body = _readyz(stale_database, redis_url)
    assert status == 503
    reason = body["checks"]["database"]["reason"]
    assert reason == f"schema version 3 is older than {SCHEMA_VERSION}: run `flowdesk db init`"


def test_rabbitmq_broker_is_checked_when_configured(database_url: str, redis_url: str) -> None:
    status, body = _readyz(database_url, redis_url, AMQP_URL=AMQP_URL)
    if body["checks"]["broker"]["ok"] is False and os.environ.get("CI", "") != "true":
        pytest.skip(f"RabbitMQ unavailable: {body['checks']['broker']['reason']}")
    assert status == 200
    assert body["checks"]["broker"] == {"ok": True, "kind": "rabbitmq"}

    gone = f"amqp://guest:guest@127.0.0.1:{_closed_port()}/"
    status, body = _readyz(database_url, redis_url, AMQP_URL=gone)
    assert status == 503
    assert body["checks"]["broker"]["ok"] is False
    assert "guest" not in body["checks"]["broker"]["reason"]


def test_probes_are_not_rate_limited(database_url: str, redis_url: str) -> None:
    limits = {"QUEUE_PREFIX": f"fdtest-rl{os.getpid()}", "API_RATE_PER_IP_PER_MIN": "2"}
    with _client(database_url, redis_url, **limits) as client:
        limited = [client.get("/api/v1/openapi.json").status_code for _ in range(4)]
        probes = [client.get(path).status_code for path in ("/readyz", "/metrics") * 4]
    assert 429 in limited  # the limit is on for this client
    assert probes == [200] * 8


def _open_websockets() -> float:
    labels = {"endpoint": "realtime"}
    return REGISTRY.get_sample_value("flowdesk_websocket_connections", labels) or 0.0


def test_websocket_connections_are_counted_while_open(database_url: str, redis_url: str) -> None:
    before = _open_websockets()
    with _client(database_url, redis_url) as client:
        with client.websocket_connect("/api/v1/ws") as ws:
            assert _open_websockets() == before + 1
            ws.send_text("not an auth message")
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == CLOSE_BAD_REQUEST
        assert _open_websockets() == before
