"""The realtime WebSocket as a browser tab sees it: live events, its tenant only, resumable."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy import Engine, text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api import realtime, realtime_access
from engine import security
from engine.db import create_db_engine, system_tx
from engine.security import Role, issue_access_token, token_digest
from engine.store.outbox import insert_outbox
from engine.store.tenants import insert_user
from pipelines.deliver import realtime_stream
from tests.conftest import fresh_database
from tests.support.harness import (
    RunningEngine,
    Seeded,
    fixture_bytes,
    running_engine,
    seed_whatsapp,
    wait_until,
)

B_PHONE_NUMBER_ID = "106540352242923"
Frame = dict[str, Any]


@pytest.fixture(scope="module")
def ws_database_url() -> str:
    """A database of this module's own: tests/api's `db` fixture is the seeded async one."""
    return fresh_database(f"flowdesk_test_ws_{os.getpid()}")


@pytest.fixture
def sync_db(ws_database_url: str) -> Iterator[Engine]:
    """Every tenant's rows removed first (as the owner: the app role may not TRUNCATE)."""
    with psycopg.connect(ws_database_url.replace("+psycopg", "")) as conn:
        conn.execute("TRUNCATE tenants RESTART IDENTITY CASCADE")
    engine = create_db_engine(ws_database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def engine_up(
    sync_db: Engine, ws_database_url: str, redis_url: str, queue_prefix: str
) -> Iterator[RunningEngine]:
    with running_engine(
        database_url=ws_database_url, redis_url=redis_url, queue_prefix=queue_prefix
    ) as running:
        yield running


@pytest.fixture(scope="module")
def shared_engine(ws_database_url: str, redis_url: str) -> Iterator[RunningEngine]:
    """One engine for the tests that only open and close connections."""
    prefix = f"fdtest-ws-{os.getpid()}"
    with running_engine(
        database_url=ws_database_url, redis_url=redis_url, queue_prefix=prefix
    ) as running:
        yield running
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def tenants(sync_db: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[Seeded, Seeded]:
    monkeypatch.setattr(security, "BCRYPT_ROUNDS", 4)  # the seed's password hashes, quickly
    return seed_whatsapp(sync_db, name="A"), seed_whatsapp(
        sync_db, name="B", phone_number_id=B_PHONE_NUMBER_ID
    )


def user(db: Engine, tenant: Seeded, role: Role, name: str) -> int:
    with system_tx(db) as conn:
        return insert_user(
            conn,
            tenant_id=tenant.tenant_id,
            name=name,
            email=f"{name}@{tenant.tenant_id}.test",
            password_hash="not-used-here",
            role=role,
        )


def admin_id(db: Engine, tenant: Seeded) -> int:
    with system_tx(db) as conn:
        return int(
            conn.execute(
                text("SELECT id FROM users WHERE tenant_id = :t AND role = 'admin'"),
                {"t": tenant.tenant_id},
            ).scalar_one()
        )


def token(engine: RunningEngine, tenant: Seeded, user_id: int, role: Role) -> str:
    return issue_access_token(
        user_id=user_id,
        tenant_id=tenant.tenant_id,
        role=role,
        token_version=0,
        secret=engine.settings.JWT_SECRET,
        ttl_s=600,
    )


class Feed:
    """One WebSocket connection, read with deadlines; heartbeats are set aside."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    def next(self, timeout_s: float = 5.0) -> Frame:
        deadline = time.monotonic() + timeout_s
        while True:
            frame: Frame = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0)))
            if frame.get("type") != "ping":
                return frame

    def events(self, wait_s: float) -> list[Frame]:
        """Everything that arrives within `wait_s`."""
        out: list[Frame] = []
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.next(left))
            except TimeoutError:
                break
        return out

    def until(self, done: Callable[[Frame], bool], timeout_s: float = 5.0) -> list[Frame]:
        """Frames up to and including the first for which `done` holds."""
        out: list[Frame] = []
        deadline = time.monotonic() + timeout_s
        while not out or not done(out[-1]):
            out.append(self.next(deadline - time.monotonic()))
        return out

    def close_code(self, timeout_s: float) -> int | None:
        """Wait for the server to close the connection; its close code."""
        try:
            self.events(timeout_s)
            self.ws.recv(timeout=0.01)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None
        return None


@contextmanager
def feed(engine: RunningEngine, query: str = "", *, auth: Frame | None = None) -> Iterator[Feed]:
    url = (
        engine.base_url.replace("http://", "ws://") + "/api/v1/ws" + (f"?{query}" if query else "")
    )
    with connect(url, proxy=None, open_timeout=5, close_timeout=1) as ws:
        if auth is not None:
            ws.send(json.dumps(auth))
        yield Feed(ws)


@contextmanager
def ready(engine: RunningEngine, tok: str, last_event_id: str | None = None) -> Iterator[Feed]:
    query = f"token={tok}" + (f"&last_event_id={last_event_id}" if last_event_id else "")
    with feed(engine, query) as f:
        assert f.next() == {"type": "ready"}
        yield f


def emit(db: Engine, tenant: Seeded, topic: str, **payload: object) -> int:
    """Commit an outbox event the way a pipeline does and hand it to the deliver actor."""
    return emit_all(db, tenant, [(topic, payload)])[0]


def emit_all(db: Engine, tenant: Seeded, events: list[tuple[str, dict[str, object]]]) -> list[int]:
    """Several events in one batch, so they reach the Stream in this order."""
    from actors.deliver import publish_outbox

    with system_tx(db) as conn:
        ids = [
            insert_outbox(conn, tenant_id=tenant.tenant_id, topic=topic, payload=payload)
            for topic, payload in events
        ]
    publish_outbox.send(ids)
    return ids


def topics(frames: list[Frame]) -> list[str]:
    return [f["topic"] for f in frames if "topic" in f]


def test_a_new_message_reaches_its_tenant_within_a_second_and_no_other(
    engine_up: RunningEngine, sync_db: Engine, tenants: tuple[Seeded, Seeded]
) -> None:
    a, b = tenants
    tok_a = token(engine_up, a, admin_id(sync_db, a), "admin")
    tok_b = token(engine_up, b, admin_id(sync_db, b), "admin")
    with ready(engine_up, tok_a) as feed_a, ready(engine_up, tok_b) as feed_b:
        assert engine_up.post_whatsapp(
            a.channel_id, fixture_bytes("whatsapp", "text.json")
        ).is_success

        frames = feed_a.until(lambda f: f.get("topic") == "message.created")
        arrived = time.time()
        with system_tx(sync_db) as conn:
            ticket_id, message_id, processed_at = conn.execute(
                text("SELECT ticket_id, id, extract(epoch FROM created_at) FROM messages")
            ).one()
            outbox_ids = conn.execute(text("SELECT id FROM outbox ORDER BY id")).scalars().all()
        assert arrived - float(processed_at) < 1.0
        assert topics(frames) == ["ticket.created", "message.created"]
        created = frames[-1]
        assert set(created) == {"id", "event_id", "topic", "data", "at"}
        assert created["event_id"] == outbox_ids[-1]
        assert (created["data"]["ticket_id"], created["data"]["message_id"]) == (
            ticket_id,
            message_id,
        )
        assert feed_b.events(0.5) == []


def test_an_agent_gets_only_events_of_tickets_they_may_see(
    engine_up: RunningEngine,
    sync_db: Engine,
    tenants: tuple[Seeded, Seeded],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(realtime_access, "VISIBILITY_TTL_S", 0.0)  # see each change at once
    a, _ = tenants
    agent_id = user(sync_db, a, "agent", "agent")
    tok_admin = token(engine_up, a, admin_id(sync_db, a), "admin")
    tok_agent = token(engine_up, a, agent_id, "agent")
    assert engine_up.post_whatsapp(a.channel_id, fixture_bytes("whatsapp", "text.json")).is_success
    engine_up.drain()
    with system_tx(sync_db) as conn:
        ticket_id, message_id, contact_id = conn.execute(
            text("SELECT ticket_id, id, contact_id FROM messages")
        ).one()
        queue_id = conn.execute(
            text("INSERT INTO queues (tenant_id, name) VALUES (:t, 'Billing') RETURNING id"),
            {"t": a.tenant_id},
        ).scalar_one()

    with ready(engine_up, tok_admin) as admin, ready(engine_up, tok_agent) as agent:
        # Pending and in no queue yet: anyone may pick it up, so the agent sees it.
        emit(sync_db, a, "ticket.updated", ticket_id=ticket_id, status="pending")
        assert topics(agent.until(lambda f: f.get("topic") == "ticket.updated")) == [
            "ticket.updated"
        ]
        with system_tx(sync_db) as conn:
            conn.execute(text("UPDATE tickets SET queue_id = :q"), {"q": queue_id})
        emit_all(
            sync_db,
            a,
            [
                ("ticket.updated", {"ticket_id": ticket_id, "queue_id": queue_id}),
                ("message.status", {"message_id": message_id, "status": "read"}),  # no ticket_id
                ("campaign.progress", {"campaign_id": 1, "sent": 3}),
                ("contact.updated", {"contact_id": contact_id}),  # marks the end
            ],
        )

        got = agent.until(lambda f: f.get("topic") == "contact.updated")
        assert topics(got) == ["contact.updated"]
        seen_by_admin = admin.until(lambda f: f.get("topic") == "contact.updated")
        assert topics(seen_by_admin) == [
            "ticket.updated",
            "ticket.updated",
            "message.status",
            "campaign.progress",
            "contact.updated",
        ]

        with system_tx(sync_db) as conn:  # the agent joins the queue
            conn.execute(
                text("INSERT INTO user_queues (tenant_id, user_id, queue_id) VALUES (:t, :u, :q)"),
                {"t": a.tenant_id, "u": agent_id, "q": queue_id},
            )
        emit(sync_db, a, "message.status", message_id=message_id, status="read")
        got = agent.until(lambda f: f.get("topic") == "message.status")
        assert got[-1]["data"] == {"message_id": message_id, "status": "read"}


def test_a_reconnecting_client_replays_what_it_missed(
    engine_up: RunningEngine, sync_db: Engine, tenants: tuple[Seeded, Seeded], redis_url: str
) -> None:
    a, b = tenants
    tok_a = token(engine_up, a, admin_id(sync_db, a), "admin")
    with ready(engine_up, tok_a) as first:
        emit(sync_db, a, "ticket.updated", ticket_id=1, n=1)
        last_seen = first.next()["id"]
    missed = emit_all(sync_db, a, [("ticket.updated", {"ticket_id": 1, "n": n}) for n in (2, 3)])
    stream = realtime_stream(engine_up.settings.QUEUE_PREFIX, a.tenant_id)
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: client.xlen(stream) == 3, 10, "events in the stream")

    with ready(engine_up, tok_a, last_seen) as again:
        replayed = [again.next(), again.next()]
        assert [f["event_id"] for f in replayed] == missed
        assert [f["data"]["n"] for f in replayed] == [2, 3]
        emit(sync_db, a, "ticket.updated", ticket_id=1, n=4)  # then live events follow
        assert again.next()["data"]["n"] == 4

    auth = {"type": "auth", "token": tok_a, "last_event_id": last_seen}
    with feed(engine_up, auth=auth) as by_message:  # the resume point may come in the message
        assert by_message.next() == {"type": "ready"}
        assert [by_message.next()["data"]["n"] for _ in range(3)] == [2, 3, 4]

    with feed(engine_up, f"token={tok_a}&last_event_id=1-0") as too_old:
        assert too_old.next() == {"type": "resync"}
        assert too_old.next() == {"type": "ready"}
        assert too_old.events(0.3) == []  # no partial replay: the client refetches over REST

    tok_b = token(engine_up, b, admin_id(sync_db, b), "admin")
    with feed(engine_up, f"token={tok_b}&last_event_id=1-0") as other_tenant:
        assert other_tenant.next() == {"type": "resync"}
        assert other_tenant.next() == {"type": "ready"}
        assert other_tenant.events(0.3) == []  # A's backlog is not B's
    client.close()


def test_a_revoked_token_closes_the_connection_within_a_heartbeat(
    engine_up: RunningEngine,
    sync_db: Engine,
    tenants: tuple[Seeded, Seeded],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(realtime, "HEARTBEAT_S", 0.3)
    a, _ = tenants
    agent_id = user(sync_db, a, "agent", "agent")
    with ready(engine_up, token(engine_up, a, agent_id, "agent")) as agent:
        assert agent.ws.recv(timeout=2) is not None  # a heartbeat while all is well
        with system_tx(sync_db) as conn:
            conn.execute(
                text("UPDATE users SET token_version = token_version + 1 WHERE id = :u"),
                {"u": agent_id},
            )
        assert agent.close_code(2.0) == 4401


@pytest.mark.parametrize(
    ("query", "auth", "code"),
    [
        ("token=not-a-jwt", None, 4401),
        ("", {"type": "auth", "token": "not-a-jwt"}, 4401),
        ("", {"type": "hello"}, 4400),
        ("", {"type": "auth", "token": "x", "extra": 1}, 4400),
        ("token=x&last_event_id=yesterday", None, 4400),
        ("last_event_id=yesterday", {"type": "auth", "token": "x"}, 4400),  # token sent after
    ],
)
def test_bad_credentials_or_requests_are_closed_with_a_code(
    shared_engine: RunningEngine, query: str, auth: Frame | None, code: int
) -> None:
    with feed(shared_engine, query, auth=auth) as f:
        assert f.close_code(3.0) == code


def test_a_silent_client_is_closed_after_the_auth_timeout(
    shared_engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(realtime, "AUTH_TIMEOUT_S", 0.3)
    with feed(shared_engine) as f:
        assert f.close_code(3.0) == 4401


def test_a_token_of_a_revoked_user_cannot_connect(
    engine_up: RunningEngine, sync_db: Engine, tenants: tuple[Seeded, Seeded]
) -> None:
    a, _ = tenants
    agent_id = user(sync_db, a, "agent", "agent")
    with system_tx(sync_db) as conn:
        conn.execute(text("UPDATE users SET token_version = 5 WHERE id = :u"), {"u": agent_id})
    with feed(engine_up, f"token={token(engine_up, a, agent_id, 'agent')}") as f:
        assert f.close_code(3.0) == 4401


def api_client(db: Engine, tenant: Seeded, permissions: list[str]) -> tuple[int, str]:
    """An API client of the tenant's admin, its token as the API would have shown it."""
    raw = f"fdk_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    with system_tx(db) as conn:
        client_id = conn.execute(
            text(
                "INSERT INTO api_clients (tenant_id, name, token_hash, permissions, created_by)"
                " SELECT :t, 'CRM', :h, :p, id FROM users WHERE tenant_id = :t AND role = 'admin'"
                " RETURNING id"
            ),
            {"t": tenant.tenant_id, "h": token_digest(raw), "p": permissions},
        ).scalar_one()
    return int(client_id), raw


def test_an_api_client_follows_events_by_its_grants_until_revoked(
    engine_up: RunningEngine,
    sync_db: Engine,
    tenants: tuple[Seeded, Seeded],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(realtime, "HEARTBEAT_S", 0.3)
    a, _ = tenants
    client_id, raw = api_client(sync_db, a, ["tickets.read_all"])
    _, contacts_only = api_client(sync_db, a, ["contacts.read"])

    with feed(engine_up, f"token={contacts_only}") as refused:
        assert refused.close_code(3.0) == 4403
    with ready(engine_up, raw) as crm:
        emit_all(
            sync_db,
            a,
            [("ticket.updated", {"ticket_id": 1}), ("campaign.progress", {"campaign_id": 1})],
        )
        assert topics(crm.until(lambda f: f.get("topic") == "campaign.progress")) == [
            "ticket.updated",
            "campaign.progress",
        ]
        with system_tx(sync_db) as conn:
            conn.execute(
                text("UPDATE api_clients SET revoked_at = now() WHERE id = :c"), {"c": client_id}
            )
        assert crm.close_code(2.0) == 4401
