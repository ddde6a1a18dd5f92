"""A fresh tenant per test for the ticket API: people, queues, wallets, tags and named tickets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import dramatiq
import httpx
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Connection, Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.broker import bind_actors
from engine.db import async_system_tx, create_db_engine
from engine.security import Role, issue_access_token
from tests.api.helpers import SETTINGS

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
_serial = count(1)

# name: (contact, channel, status, queue, assignee, minutes after T0 of the last message, unread)
TICKETS: dict[str, tuple[str, str, str, str | None, str | None, int, int]] = {
    "q1_pending": ("alice", "whatsapp", "pending", "q1", None, 90, 3),
    "q2_open": ("bob", "whatsapp", "open", "q2", "agent2", 80, 0),
    "mine": ("carol", "whatsapp", "open", "q2", "agent", 70, 1),
    "wallet": ("dave", "whatsapp", "open", "q2", "agent2", 60, 0),
    "unqueued": ("eve", "whatsapp", "pending", None, None, 50, 2),
    "unqueued_open": ("frank", "whatsapp", "open", None, "agent2", 40, 0),
    "closed_q2": ("bob", "telegram", "closed", "q2", "agent2", 30, 0),
    "closed_mine": ("alice", "telegram", "closed", "q1", "agent", 20, 0),
    "closed_alice_wa": ("alice", "whatsapp", "closed", "q1", None, 10, 0),
}
CONTACTS = {
    "alice": ("Alice Souza", "+5511912345678"),
    "bob": ("Bob 100% Real_Name", "+5511987654321"),
    "carol": ("Carol", None),
    "dave": ("Dave", "+14155550123"),
    "eve": ("Eve", None),
    "frank": ("Frank", None),
}


@dataclass(frozen=True)
class World:
    tenant_id: int
    users: dict[str, int]  # admin, supervisor, agent (queue q1, wallet dave), agent2
    queues: dict[str, int]
    channels: dict[str, int]
    contacts: dict[str, int]
    tags: dict[str, int]  # vip: alice
    tickets: dict[str, int]

    def token(self, user: str) -> str:
        roles: dict[str, Role] = {"admin": "admin", "supervisor": "supervisor"}
        role = roles.get(user, "agent")
        return issue_access_token(
            user_id=self.users[user],
            tenant_id=self.tenant_id,
            role=role,
            token_version=0,
            secret=SETTINGS.JWT_SECRET,
            ttl_s=600,
        )

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}


def _id(conn: Connection, sql: str, **params: object) -> int:
    return int(conn.execute(text(sql + " RETURNING id"), params).scalar_one())


def build_world(conn: Connection) -> World:
    """Insert one tenant with everything the ticket tests use (system-scoped transaction)."""
    n = next(_serial)
    tenant_id = _id(conn, "INSERT INTO tenants (name) VALUES (:n)", n=f"Inbox {n}")
    stamp = f"{tenant_id}-{n}"
    users = {
        name: _id(
            conn,
            "INSERT INTO users (tenant_id, name, email, password_hash, role)"
            " VALUES (:t, :name, :email, 'not-a-hash', :role)",
            t=tenant_id,
            name=name,
            email=f"{name}-{stamp}@inbox.test",
            role=role,
        )
        for name, role in (
            ("admin", "admin"),
            ("supervisor", "supervisor"),
            ("agent", "agent"),
            ("agent2", "agent"),
        )
    }
    queues = {
        q: _id(conn, "INSERT INTO queues (tenant_id, name) VALUES (:t, :q)", t=tenant_id, q=q)
        for q in ("q1", "q2")
    }
    conn.execute(
        text("INSERT INTO user_queues (tenant_id, user_id, queue_id) VALUES (:t, :u, :q)"),
        {"t": tenant_id, "u": users["agent"], "q": queues["q1"]},
    )
    channels = {
        kind: _id(
            conn,
            "INSERT INTO channels (tenant_id, type, name, external_id)"
            " VALUES (:t, :kind, :name, :ext)",
            t=tenant_id,
            kind=kind,
            name=f"{kind} line",
            ext=f"{kind}-{stamp}",
        )
        for kind in ("whatsapp", "telegram")
    }
    contacts = {
        key: _id(
            conn,
            "INSERT INTO contacts (tenant_id, name, phone) VALUES (:t, :name, :phone)",
            t=tenant_id,
            name=name,
            phone=phone,
        )
        for key, (name, phone) in CONTACTS.items()
    }
    conn.execute(
        text("INSERT INTO wallets (tenant_id, contact_id, user_id) VALUES (:t, :c, :u)"),
        {"t": tenant_id, "c": contacts["dave"], "u": users["agent"]},
    )
    vip = _id(conn, "INSERT INTO tags (tenant_id, name) VALUES (:t, 'vip')", t=tenant_id)
    conn.execute(
        text("INSERT INTO contact_tags (tenant_id, contact_id, tag_id) VALUES (:t, :c, :g)"),
        {"t": tenant_id, "c": contacts["alice"], "g": vip},
    )
    tickets = {}
    for name, (contact, channel, status, queue, user, minutes, unread) in TICKETS.items():
        tickets[name] = _id(
            conn,
            "INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol, queue_id,"
            " user_id, last_message_at, unread_count, last_inbound_at, closed_at)"
            " VALUES (:t, :ch, :co, :status, :protocol, :q, :u, :at, :unread, now(),"
            " CASE WHEN :status = 'closed' THEN now() END)",
            t=tenant_id,
            ch=channels[channel],
            co=contacts[contact],
            status=status,
            protocol=f"P{stamp}-{name}",
            q=None if queue is None else queues[queue],
            u=None if user is None else users[user],
            at=T0 + timedelta(minutes=minutes),
            unread=unread,
        )
    return World(tenant_id, users, queues, channels, contacts, {"vip": vip}, tickets)


async def new_world(db: AsyncEngine) -> World:
    async with async_system_tx(db) as conn:
        return await conn.run_sync(build_world)


async def scalar(db: AsyncEngine, sql: str, **params: object) -> Any:
    async with async_system_tx(db) as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def execute(db: AsyncEngine, sql: str, **params: object) -> None:
    async with async_system_tx(db) as conn:
        await conn.execute(text(sql), params)


async def rows(db: AsyncEngine, sql: str, **params: object) -> list[dict[str, Any]]:
    async with async_system_tx(db) as conn:
        return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]


def sync_engine(db: AsyncEngine) -> Engine:
    """A synchronous engine on the same database, for the worker- and scheduler-side code."""
    url = db.url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_db_engine(url, pool_size=4)


def queued(broker: StubBroker, queue: str) -> list[tuple[str, tuple[Any, ...]]]:
    """(actor, args) of every message waiting on `queue` of the stub broker."""
    items = list(broker.queues[queue].queue)
    return [(m.actor_name, tuple(m.args)) for m in (dramatiq.Message.decode(raw) for raw in items)]


def stub_broker() -> Iterator[StubBroker]:
    """Actors bound to a stub broker, so a test sees what the API enqueued (fixture body)."""
    stub = StubBroker()
    bind_actors(stub)
    yield stub
    stub.close()


async def walk(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> list[int]:
    """Every ticket id the list returns for `query`, following next_cursor to the end."""
    ids: list[int] = []
    cursor: str | None = None
    for _ in range(50):
        url = f"/api/v1/tickets?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination never ended")
