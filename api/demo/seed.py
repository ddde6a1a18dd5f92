"""The demo's own tenant, admin and WhatsApp channel, fresh for every run."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine

from adapters.base import ChannelSecrets
from api.demo.whatsapp import BusinessNumber
from engine.db import system_tx
from engine.events import ChannelConfig, ChannelType
from engine.security import hash_password
from engine.store.channels import insert_channel
from engine.store.tenants import insert_tenant, insert_user


@dataclass(frozen=True)
class Seeded:
    """What the demo needs to address, sign for and log in to its tenant."""

    tenant_id: int
    tenant_name: str
    channel_id: int
    business: BusinessNumber
    app_secret: str
    email: str
    password: str


def seed_demo_tenant(db: Engine, rng: random.Random) -> Seeded:
    """A fresh tenant, admin and WhatsApp channel, so that this run counts only its own rows."""
    tag = secrets.token_hex(3)
    business = BusinessNumber(
        phone_number_id=str(rng.randrange(10**14, 10**15)),
        display_phone_number=f"1555{rng.randrange(10**7):07d}",
        waba_id=str(rng.randrange(10**14, 10**15)),
    )
    app_secret = secrets.token_hex(16)
    email, password = f"demo-admin-{tag}@example.com", secrets.token_urlsafe(12)
    name = f"FlowDesk Demo {tag}"
    password_hash = hash_password(password)
    with system_tx(db) as conn:
        tenant_id = insert_tenant(conn, name=name, time_zone="America/Sao_Paulo")
        insert_user(
            conn,
            tenant_id=tenant_id,
            name="Demo Admin",
            email=email,
            password_hash=password_hash,
            role="admin",
        )
        channel_id = insert_channel(
            conn,
            tenant_id=tenant_id,
            type=ChannelType.WHATSAPP,
            name=f"WhatsApp {business.phone_number_id}",
            external_id=business.phone_number_id,
            config=ChannelConfig(),
            secrets=ChannelSecrets(
                access_token="demo-access-token",  # noqa: S106 - nothing is sent out yet
                app_secret=app_secret,
                verify_token=secrets.token_hex(8),
            ),
        )
    return Seeded(tenant_id, name, channel_id, business, app_secret, email, password)
