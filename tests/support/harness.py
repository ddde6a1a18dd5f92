"""Run the real engine in-process: uvicorn on a free port and a Dramatiq worker on a real broker."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import uvicorn
from sqlalchemy import Engine

from actors.wiring import build_worker_deps
from adapters.base import ChannelSecrets
from api.app import create_app
from config import Settings, load_settings
from engine.db import system_tx
from engine.events import ChannelConfig, ChannelType
from engine.runtime import Runtime
from engine.security import hash_password
from engine.store.channels import insert_channel
from engine.store.tenants import insert_tenant, insert_user

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
APP_SECRET = "test-app-secret-0123"
VERIFY_TOKEN = "test-verify-token"
PHONE_NUMBER_ID = "106540352242922"


def fixture_bytes(channel: str, name: str) -> bytes:
    return (FIXTURES / channel / name).read_bytes()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Seeded:
    tenant_id: int
    channel_id: int
    admin_email: str
    admin_password: str


def seed_whatsapp(
    db: Engine, *, name: str = "Acme", phone_number_id: str = PHONE_NUMBER_ID
) -> Seeded:
    """A tenant with an admin and a WhatsApp channel, written directly (no CLI)."""
    email = f"admin-{name.lower()}-{phone_number_id}@example.com"
    with system_tx(db) as conn:
        tenant_id = insert_tenant(conn, name=name)
        insert_user(
            conn,
            tenant_id=tenant_id,
            name="Admin",
            email=email,
            password_hash=hash_password("correct horse"),
            role="admin",
        )
        channel_id = insert_channel(
            conn,
            tenant_id=tenant_id,
            type=ChannelType.WHATSAPP,
            name=f"WhatsApp {phone_number_id}",
            external_id=phone_number_id,
            config=ChannelConfig(),
            secrets=ChannelSecrets(
                access_token="tok", app_secret=APP_SECRET, verify_token=VERIFY_TOKEN
            ),
        )
    return Seeded(tenant_id, channel_id, email, "correct horse")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningEngine:
    base_url: str
    settings: Settings
    broker: dramatiq.Broker
    worker: dramatiq.Worker | None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)

    def post_whatsapp(
        self, channel_id: int, body: bytes | dict[str, Any], *, secret: str = APP_SECRET
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self.client() as c:
            return c.post(
                f"/webhooks/whatsapp/{channel_id}",
                content=raw,
                headers={
                    "X-Hub-Signature-256": sign(raw, secret),
                    "Content-Type": "application/json",
                },
            )

    def drain(self, timeout_s: float = 20.0, *, wait_for_inbox: bool = True) -> None:
        """Wait until every stored webhook is processed and the broker has nothing left.

        The web answers 200 before it enqueues, so an empty queue alone proves nothing: first
        wait for the inbox to have no pending rows.
        """
        if wait_for_inbox:
            wait_until(
                lambda: _pending_inbox(self.settings) == 0, timeout_s, "inbox rows to be processed"
            )
        for queue in ("inbound", "deliver", "outbound", "media"):
            name = f"{self.settings.QUEUE_PREFIX}.{queue}" if self.settings.AMQP_URL else queue
            if name in self.broker.get_declared_queues():
                self.broker.join(name, timeout=int(timeout_s * 1000))


def _pending_inbox(settings: Settings) -> int:
    import psycopg

    url = settings.database_url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("SELECT set_config('app.scope', 'system', false)")
        row = conn.execute("SELECT count(*) FROM inbox WHERE status = 'pending'").fetchone()
    return int(row[0]) if row else 0


def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


@contextmanager
def running_engine(
    *,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
    worker_threads: int = 4,
    start_worker: bool = True,
    amqp_url: str | None = None,
    web_database_url: str | None = None,
    **overrides: str,
) -> Iterator[RunningEngine]:
    env = {
        "DATABASE_URL": database_url.replace("postgresql+psycopg://", "postgresql://"),
        "REDIS_URI": redis_url,
        "QUEUE_PREFIX": queue_prefix,
        "JWT_SECRET": "a-test-secret-of-enough-length-for-hs256",
        "MIN_BACKOFF_MS": "50",
        "MAX_BACKOFF_MS": "200",
        "MAX_RETRIES": "3",
        **({"AMQP_URL": amqp_url} if amqp_url else {}),
        **overrides,
    }
    settings = load_settings(env)
    runtime = Runtime(settings, database_url, redis_url, settings.JWT_SECRET, None)
    deps = build_worker_deps(settings, runtime)
    broker = dramatiq.get_broker()
    if amqp_url is None:
        broker.flush_all()
    worker = dramatiq.Worker(broker, worker_threads=worker_threads, worker_timeout=100)
    if start_worker:
        worker.start()
    port = free_port()
    web_runtime = Runtime(
        settings, web_database_url or database_url, redis_url, settings.JWT_SECRET, None
    )
    app = create_app(settings, web_runtime, broker)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn start")
    try:
        yield RunningEngine(f"http://127.0.0.1:{port}", settings, broker, worker)
    finally:
        server.should_exit = True
        thread.join(10)
        worker.stop()
        broker.close()
        if deps.send_pool is not None:
            deps.send_pool.shutdown()
        deps.db.dispose()
