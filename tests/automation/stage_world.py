"""A tenant with a WhatsApp channel, queues and agents in a rolled-back transaction, and a way
to run one customer message through every inbound stage, automation included."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from actors.deps import default_adapters
from engine.db import set_system, set_tenant
from engine.events import ChannelConfig, ChannelSecrets, ChannelType
from engine.store.channels import insert_channel
from engine.store.inbox import InboxRow
from engine.store.settings import upsert_setting
from engine.store.tenants import insert_tenant, insert_user
from pipelines.inbound import BatchOutcome, enrich, persist, route, validate
from pipelines.inbound.automate import automate
from tests.support.harness import PHONE_NUMBER_ID, fixture_bytes

ADAPTERS = default_adapters()
ANA = "5511987654321"
ANA_E164 = "+5511987654321"
# Sunday 29 November 2026, 12:00 UTC; Monday 30 November 2026, 12:00 UTC.
SUNDAY_NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WEEKDAYS_9_TO_18 = {
    "time_zone": "UTC",
    "week": {d: [{"start": "09:00", "end": "18:00"}] for d in ("mon", "tue", "wed", "thu", "fri")},
}


def text_from(wa_id: str, body: str) -> bytes:
    payload = json.loads(fixture_bytes("whatsapp", "text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    value["messages"][0].update(
        {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "text": {"body": body}}
    )
    return json.dumps(payload).encode()


@dataclass
class World:
    conn: Connection
    tenant_id: int
    channel_id: int

    def sql(self, statement: str, **params: Any) -> Any:
        return self.conn.execute(text(statement), {"t": self.tenant_id, **params})

    def queue(self, name: str, *, distribution: str = "round_robin") -> int:
        return int(
            self.sql(
                "INSERT INTO queues (tenant_id, name, distribution) "
                "VALUES (:t, :n, :d) RETURNING id",
                n=name,
                d=distribution,
            ).scalar_one()
        )

    def agent(self, name: str, *queue_ids: int, online: bool = True) -> int:
        user_id = insert_user(
            self.conn,
            tenant_id=self.tenant_id,
            name=name,
            email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com",
            password_hash="x",
            role="agent",
        )
        self.sql("UPDATE users SET online = :o WHERE id = :u", o=online, u=user_id)
        for queue_id in queue_ids:
            self.sql(
                "INSERT INTO user_queues (tenant_id, user_id, queue_id) VALUES (:t, :u, :q)",
                u=user_id,
                q=queue_id,
            )
        return user_id

    def flow(self, definition: dict[str, Any], *, name: str = "Menu", default: bool = False) -> int:
        return int(
            self.sql(
                "INSERT INTO chat_flows (tenant_id, name, definition, is_default) "
                "VALUES (:t, :n, CAST(:d AS jsonb), :default) RETURNING id",
                n=name,
                d=json.dumps(definition),
                default=default,
            ).scalar_one()
        )

    def attach(self, flow_id: int | None = None, *, default_queue_id: int | None = None) -> None:
        self.sql(
            "UPDATE channels SET chat_flow_id = :f, default_queue_id = :q WHERE id = :c",
            f=flow_id,
            q=default_queue_id,
            c=self.channel_id,
        )

    def setting(self, key: str, value: Any) -> None:
        upsert_setting(self.conn, tenant_id=self.tenant_id, key=key, value=value)

    def says(self, body: str, *, wa_id: str = ANA, now: datetime = MONDAY_NOON) -> BatchOutcome:
        """The customer's message through validate ▸ enrich ▸ route ▸ persist ▸ automate."""
        set_system(self.conn)
        inbox_id, received_at = self.sql(
            "INSERT INTO inbox (tenant_id, channel_id, dedupe_key, body) "
            "VALUES (:t, :c, :k, :b) RETURNING id, received_at",
            c=self.channel_id,
            k=uuid.uuid4().hex,
            b=text_from(wa_id, body),
        ).one()
        row = InboxRow(
            id=inbox_id,
            tenant_id=self.tenant_id,
            channel_id=self.channel_id,
            channel_type=ChannelType.WHATSAPP,
            address_id=PHONE_NUMBER_ID,
            body=text_from(wa_id, body),
            received_at=received_at,
            attempts=0,
        )
        set_tenant(self.conn, self.tenant_id)
        routed = route(enrich(validate([row], adapters=ADAPTERS), conn=self.conn), conn=self.conn)
        return automate(routed, persist(routed, conn=self.conn), conn=self.conn, now=now)

    def ticket(self) -> dict[str, Any]:
        row = self.sql(
            "SELECT * FROM tickets WHERE tenant_id = :t ORDER BY id DESC LIMIT 1"
        ).mappings()
        return dict(row.one())

    def bot_messages(self) -> list[str]:
        rows = self.sql(
            "SELECT body FROM messages WHERE tenant_id = :t AND direction = 'out' "
            "AND send_type = 'bot' ORDER BY id"
        )
        return [r[0] for r in rows]

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self.sql("SELECT type, data FROM ticket_events WHERE tenant_id = :t ORDER BY id")
        return [(r[0], r[1]) for r in rows]

    def event_types(self) -> list[str]:
        return [kind for kind, _ in self.events()]


def world_in(db: Engine, *, name: str = "Acme") -> Iterator[World]:
    """A fresh tenant and channel in a transaction rolled back afterwards."""
    with db.connect() as conn:
        tx = conn.begin()
        set_system(conn)
        tenant_id = insert_tenant(conn, name=f"{name} {uuid.uuid4().hex[:6]}")
        channel_id = insert_channel(
            conn,
            tenant_id=tenant_id,
            type=ChannelType.WHATSAPP,
            name="WhatsApp",
            external_id=PHONE_NUMBER_ID,
            config=ChannelConfig(),
            secrets=ChannelSecrets(access_token="t", app_secret="s", verify_token="v"),
        )
        set_tenant(conn, tenant_id)
        try:
            yield World(conn, tenant_id, channel_id)
        finally:
            tx.rollback()
