"""A tenant of the access matrices: one row of every kind, its names marked with its label."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.rbac import ClientPermission
from engine.db import async_system_tx
from tests.api.access_helpers import SETTING_KEY, bearer
from tests.api.resources_helpers import Team, make_team


@dataclass(frozen=True)
class World:
    """A tenant with rows of every kind and the token of an API client granted all a client can
    be. `ids[kind][0]` is the row endpoints are called with: for contacts, users, channels,
    API clients and messages a spare one, so a delete takes no other seeded row along."""

    team: Team
    ids: dict[str, tuple[int, ...]]
    client_token: str

    @property
    def label(self) -> str:
        """Written into the tenant's names and bodies: another tenant must never see it."""
        return self.team.label


def _id(conn: Connection, sql: str, **params: object) -> int:
    return int(conn.execute(text(sql + " RETURNING id"), params).scalar_one())


def _phone() -> str:
    return f"+55119{uuid.uuid4().int % 10**8:08d}"


def _seed_rows(conn: Connection, team: Team) -> dict[str, tuple[int, ...]]:
    """Users, queue, tag, contacts, a ticket with an inbound and a sent message (system scope)."""
    t, label = team.tenant_id, team.label
    spare_agent = _id(
        conn,
        "INSERT INTO users (tenant_id, name, email, password_hash, role)"
        " VALUES (:t, :n, :e, 'not-a-hash', 'agent')",
        t=t,
        n=f"Spare agent {label}",
        e=f"spare-{label}@team.test",
    )
    queue = _id(conn, "INSERT INTO queues (tenant_id, name) VALUES (:t, :n)", t=t, n=f"Q {label}")
    tag = _id(conn, "INSERT INTO tags (tenant_id, name) VALUES (:t, :n)", t=t, n=f"tag {label}")
    contacts = [
        _id(
            conn,
            "INSERT INTO contacts (tenant_id, name, phone) VALUES (:t, :n, :p)",
            t=t,
            n=f"{who} {label}",
            p=_phone(),
        )
        for who in ("Spare", "Customer")
    ]
    conn.execute(
        text("INSERT INTO contact_tags (tenant_id, contact_id, tag_id) VALUES (:t, :c, :g)"),
        {"t": t, "c": contacts[1], "g": tag},
    )
    ticket = _id(
        conn,
        "INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol, queue_id,"
        " last_message_at, last_inbound_at) VALUES (:t, :ch, :c, 'pending', :p, :q, now(), now())",
        t=t,
        ch=team.channel_id,
        c=contacts[1],
        p=f"P-{label}",
        q=queue,
    )
    messages = [
        _id(
            conn,
            "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, type,"
            " body, status, provider_message_id, send_type, user_id)"
            " VALUES (:t, :tk, :c, :ch, :d, 'text', :b, :s, :pm, :st, :u)",
            t=t,
            tk=ticket,
            c=contacts[1],
            ch=team.channel_id,
            d=direction,
            b=f"{direction} {label}",
            s=status,
            pm=f"wamid.{label}.{direction}",
            st=None if direction == "in" else "chat",
            u=None if direction == "in" else team.user_ids["agent"],
        )
        for direction, status in (("in", "received"), ("out", "sent"))
    ]
    return {
        "tenant": (t,),
        "user": (spare_agent, team.user_ids["super"], team.user_ids["admin"]),
        "queue": (queue,),
        "tag": (tag,),
        "contact": tuple(contacts),
        "channel": (team.telegram_channel_id, team.channel_id),
        "ticket": (ticket,),
        "message": tuple(messages),
    }


async def _seed_automation(
    http: httpx.AsyncClient, admin: dict[str, str], label: str, *, queue_id: int, tag_id: int
) -> dict[str, tuple[int, ...]]:
    """A chat flow, an auto-reply and an auto-tag rule, as an admin sets them up."""
    flow = await _created(
        http,
        "/api/v1/chat-flows",
        admin,
        json={
            "name": f"Menu {label}",
            "definition": {
                "start": "menu",
                "nodes": [
                    {
                        "id": "menu",
                        "messages": [{"text": f"Hello from {label}"}],
                        "conditions": [
                            {
                                "match": "any",
                                "action": {"type": "move_to_queue", "queue_id": queue_id},
                            }
                        ],
                    }
                ],
            },
        },
    )
    reply = await _created(
        http,
        "/api/v1/auto-replies",
        admin,
        json={"name": f"Prices {label}", "pattern": "price", "reply": f"See {label}.example"},
    )
    rule = await _created(
        http, "/api/v1/auto-tag-rules", admin, json={"tag_id": tag_id, "pattern": "refund"}
    )
    return {
        "chat_flow": (flow["id"],),
        "auto_reply": (reply["id"],),
        "auto_tag_rule": (rule["id"],),
    }


async def _created(http: httpx.AsyncClient, path: str, headers: dict[str, str], **kw: Any) -> Any:
    response = await http.post(path, headers=headers, **kw)
    assert response.status_code in (201, 202), f"seeding {path}: {response.text}"
    return response.json()


async def _seed_sla(
    http: httpx.AsyncClient, db: AsyncEngine, admin: dict[str, str], team: Team, ticket_id: int
) -> dict[str, tuple[int, ...]]:
    """An SLA policy (through the API) and a breach recorded against it."""
    policy = await _created(
        http,
        "/api/v1/sla/policies",
        admin,
        json={"name": f"SLA {team.label}", "first_response_s": 60},
    )
    async with async_system_tx(db) as conn:
        event = await conn.run_sync(
            lambda c: _id(
                c,
                "INSERT INTO sla_events (tenant_id, policy_id, ticket_id, kind, due_at)"
                " VALUES (:t, :p, :ticket, 'first_response', now())",
                t=team.tenant_id,
                p=policy["id"],
                ticket=ticket_id,
            )
        )
    return {"sla_policy": (policy["id"],), "sla_event": (event,)}


async def seed_world(http: httpx.AsyncClient, db: AsyncEngine) -> World:
    """A fresh tenant: base rows in SQL, the rest through the API as its admin would."""
    team = await make_team(db)
    async with async_system_tx(db) as conn:
        ids = await conn.run_sync(lambda c: _seed_rows(c, team))
    admin, label = await bearer(db, team, "admin"), team.label
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    scheduled = await _created(
        http,
        f"/api/v1/tickets/{ids['ticket'][0]}/messages",
        admin,
        json={"body": f"Later {label}", "send_at": later},
    )
    ids["message"] = (scheduled["id"], *ids["message"])
    reply = await _created(
        http, "/api/v1/fast-replies", admin, json={"shortcut": f"hi{label}", "body": f"Hi {label}"}
    )
    campaign = await _created(
        http,
        "/api/v1/campaigns",
        admin,
        json={
            "name": f"Promo {label}",
            "channel_id": team.channel_id,
            "variants": [{"body": f"Offer {label}"}],
            "audience": {"contact_ids": [ids["contact"][1]]},
        },
    )
    imported = await _created(
        http,
        f"/api/v1/campaigns/imports?channel_id={team.channel_id}",
        admin,
        json={"csv": f"phone,name\n{_phone()},Imported {label}\n"},
    )
    # Two clients: the spare one is what endpoints are called with (and may be revoked);
    # the other, granted all a client can be, keeps calling.
    clients = [
        await _created(
            http,
            "/api/v1/api-clients",
            admin,
            json={"name": f"{name} {label}", "permissions": [p.value for p in ClientPermission]},
        )
        for name in ("Spare ERP", "ERP")
    ]
    subscription = await _created(
        http,
        "/api/v1/webhook-subscriptions",
        admin,
        json={"url": f"https://hooks-{label}.example.com/in", "events": ["ticket.created"]},
    )
    setting = await http.put(
        f"/api/v1/settings/{SETTING_KEY}", headers=admin, json={"value": f"Closed {label}"}
    )
    assert setting.status_code == 200, setting.text
    async with async_system_tx(db) as conn:
        delivery = await conn.run_sync(
            lambda c: _id(
                c,
                "INSERT INTO webhook_deliveries (tenant_id, subscription_id, event, payload)"
                " VALUES (:t, :s, 'ticket.created', CAST(:p AS jsonb))",
                t=team.tenant_id,
                s=subscription["id"],
                p=json.dumps({"label": label}),
            )
        )
    ids |= await _seed_sla(http, db, admin, team, ids["ticket"][0])
    ids |= await _seed_automation(
        http, admin, label, queue_id=ids["queue"][0], tag_id=ids["tag"][0]
    )
    ids |= {
        "fast_reply": (reply["id"],),
        "campaign": (campaign["id"],),
        "campaign_import": (imported["id"],),
        "api_client": tuple(c["client"]["id"] for c in clients),
        "webhook_subscription": (subscription["id"],),
        "delivery": (delivery,),
    }
    return World(team, ids, clients[1]["token"])
