"""A tenant for the routing tests: agents with capacity, queues with a policy, waiting tickets."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from engine.db import system_tx, tenant_tx
from engine.security import Role, issue_access_token
from tests.api.helpers import SETTINGS


def _id(conn: Connection, sql: str, **params: object) -> int:
    return int(conn.execute(text(sql + " RETURNING id"), params).scalar_one())


@dataclass
class Desk:
    """One tenant's routing set-up; every method writes through its own transaction."""

    db: Engine
    tenant_id: int
    channel_id: int
    stamp: str
    users: dict[str, int] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        """Headers of a signed-in request by user `name`."""
        token = issue_access_token(
            user_id=self.users[name],
            tenant_id=self.tenant_id,
            role=self.roles[name],
            token_version=0,
            secret=SETTINGS.JWT_SECRET,
            ttl_s=600,
        )
        return {"Authorization": f"Bearer {token}"}

    def agent(
        self,
        name: str,
        *,
        queues: tuple[str, ...] = (),
        online: bool = True,
        max_open: int | None = None,
        role: Role = "agent",
    ) -> int:
        with system_tx(self.db) as conn:
            user_id = _id(
                conn,
                "INSERT INTO users (tenant_id, name, email, password_hash, role, online,"
                " max_open_tickets) VALUES (:t, :n, :e, 'not-a-hash', :r, :o, :m)",
                t=self.tenant_id,
                n=name,
                e=f"{name}-{self.stamp}@routing.test",
                r=role,
                o=online,
                m=max_open,
            )
            for queue in queues:
                conn.execute(
                    text(
                        "INSERT INTO user_queues (tenant_id, user_id, queue_id) VALUES (:t, :u, :q)"
                    ),
                    {"t": self.tenant_id, "u": user_id, "q": self.queues[queue]},
                )
        self.users[name] = user_id
        self.roles[name] = role
        return user_id

    def queue(self, name: str, *, distribution: str = "none", hours: Any = None) -> int:
        with system_tx(self.db) as conn:
            self.queues[name] = _id(
                conn,
                "INSERT INTO queues (tenant_id, name, distribution, business_hours)"
                " VALUES (:t, :n, :d, CAST(:h AS jsonb))",
                t=self.tenant_id,
                n=name,
                d=distribution,
                h=None if hours is None else json.dumps(hours),
            )
        return self.queues[name]

    def ticket(
        self,
        *,
        queue: str | None = None,
        status: str = "pending",
        user: str | None = None,
        age_s: int = 0,
        bot: bool = False,
        created_at: datetime | None = None,
        tag: int | None = None,
    ) -> int:
        """A ticket of a new contact, created `age_s` seconds ago (or at `created_at`)."""
        with system_tx(self.db) as conn:
            contact = _id(
                conn,
                "INSERT INTO contacts (tenant_id, name) VALUES (:t, 'Customer')",
                t=self.tenant_id,
            )
            if tag is not None:
                conn.execute(
                    text(
                        "INSERT INTO contact_tags (tenant_id, contact_id, tag_id)"
                        " VALUES (:t, :c, :g)"
                    ),
                    {"t": self.tenant_id, "c": contact, "g": tag},
                )
            return _id(
                conn,
                "INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol,"
                " queue_id, user_id, chat_flow_state, created_at, last_message_at,"
                " last_inbound_at)"
                " VALUES (:t, :ch, :co, :s, :p, :q, :u, CAST(:bot AS jsonb),"
                " coalesce(:at, now() - make_interval(secs => :age)),"
                " coalesce(:at, now() - make_interval(secs => :age)),"
                " coalesce(:at, now() - make_interval(secs => :age)))",
                t=self.tenant_id,
                ch=self.channel_id,
                co=contact,
                s=status,
                p=f"R{uuid.uuid4().hex[:12]}",
                q=None if queue is None else self.queues[queue],
                u=None if user is None else self.users[user],
                bot=json.dumps({"node": "start"}) if bot else None,
                age=age_s,
                at=created_at,
            )

    def tag(self, name: str) -> int:
        with system_tx(self.db) as conn:
            return _id(
                conn, "INSERT INTO tags (tenant_id, name) VALUES (:t, :n)", t=self.tenant_id, n=name
            )

    def execute(self, sql: str, **params: object) -> None:
        with tenant_tx(self.db, self.tenant_id) as conn:
            conn.execute(text(sql), {"t": self.tenant_id, **params})

    def rows(self, sql: str, **params: object) -> list[dict[str, Any]]:
        with tenant_tx(self.db, self.tenant_id) as conn:
            found = conn.execute(text(sql), {"t": self.tenant_id, **params}).mappings()
            return [dict(r) for r in found]

    def value(self, sql: str, **params: object) -> Any:
        with tenant_tx(self.db, self.tenant_id) as conn:
            return conn.execute(text(sql), {"t": self.tenant_id, **params}).scalar_one()

    def assignee(self, ticket_id: int) -> int | None:
        found: int | None = self.value("SELECT user_id FROM tickets WHERE id = :id", id=ticket_id)
        return found

    def set_setting(self, key: str, value: object) -> None:
        with tenant_tx(self.db, self.tenant_id) as conn:
            conn.execute(
                text(
                    "INSERT INTO settings (tenant_id, key, value)"
                    " VALUES (:t, :k, CAST(:v AS jsonb))"
                    " ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value"
                ),
                {"t": self.tenant_id, "k": key, "v": json.dumps(value)},
            )


def new_desk(db: Engine) -> Desk:
    stamp = uuid.uuid4().hex[:10]
    with system_tx(db) as conn:
        tenant_id = _id(conn, "INSERT INTO tenants (name) VALUES (:n)", n=f"Routing {stamp}")
        channel_id = _id(
            conn,
            "INSERT INTO channels (tenant_id, type, name, external_id)"
            " VALUES (:t, 'whatsapp', 'Sales', :ext)",
            t=tenant_id,
            ext=f"wa-{stamp}",
        )
    return Desk(db=db, tenant_id=tenant_id, channel_id=channel_id, stamp=stamp)
