"""A tenant, its admin and one channel written directly; webhooks posted to that channel."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import bcrypt
import httpx
from sqlalchemy import Engine

from adapters.registry import setup_models
from engine.db import system_tx
from engine.events import ChannelType
from engine.store.channels import insert_channel
from engine.store.tenants import insert_tenant, insert_user
from tests.support.channels.base import Webhook
from tests.support.harness import RunningEngine, Seeded

PASSWORD = "correct horse"
# A real bcrypt hash, at the lowest cost: each test logs in once, and cost 12 costs ~0.5 s.
_PASSWORD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode("ascii")
_tenants = itertools.count(1)


@dataclass(frozen=True)
class SeededChannel:
    seeded: Seeded
    type: ChannelType
    external_id: str

    @property
    def channel_id(self) -> int:
        return self.seeded.channel_id

    @property
    def path(self) -> str:
        return f"/webhooks/{self.type.value}/{self.channel_id}"


def seed_channel(db: Engine, type: ChannelType, setup: dict[str, Any]) -> SeededChannel:
    """A tenant, its admin and one channel validated by the channel type's set-up model."""
    external_id, config, secrets = setup_models()[type](**setup).to_channel()
    email = f"admin-{type.value}-{next(_tenants)}@example.com"
    with system_tx(db) as conn:
        tenant_id = insert_tenant(conn, name=f"Tenant {type.value}")
        insert_user(
            conn,
            tenant_id=tenant_id,
            name="Admin",
            email=email,
            password_hash=_PASSWORD_HASH,
            role="admin",
        )
        channel_id = insert_channel(
            conn,
            tenant_id=tenant_id,
            type=type,
            name=f"{type.value} {external_id}",
            external_id=external_id,
            config=config,
            secrets=secrets,
        )
    return SeededChannel(Seeded(tenant_id, channel_id, email, PASSWORD), type, external_id)


def post(engine: RunningEngine, channel: SeededChannel, webhook: Webhook) -> httpx.Response:
    with engine.client() as client:
        return client.post(channel.path, content=webhook.body, headers=webhook.headers)
