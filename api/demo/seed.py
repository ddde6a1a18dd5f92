"""The demo's own tenant, admin and six channels (one per type), fresh for every run."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, text

from adapters.email.setup import ChannelSetup as EmailSetup
from adapters.instagram.setup import ChannelSetup as InstagramSetup
from adapters.messenger.setup import ChannelSetup as MessengerSetup
from adapters.registry import ChannelSetup
from adapters.telegram.setup import ChannelSetup as TelegramSetup
from adapters.twilio.setup import ChannelSetup as SmsSetup
from adapters.whatsapp.setup import ChannelSetup as WhatsAppSetup
from api.demo.whatsapp import BusinessNumber
from engine.db import system_tx
from engine.events import ChannelType
from engine.security import hash_password
from engine.store.channels import insert_channel
from engine.store.tenants import insert_tenant, insert_user

GRAPH_VERSION = "v21.0"
CHANNEL_ORDER = (
    ChannelType.WHATSAPP,
    ChannelType.MESSENGER,
    ChannelType.INSTAGRAM,
    ChannelType.TELEGRAM,
    ChannelType.SMS,
    ChannelType.EMAIL,
)


@dataclass(frozen=True)
class SandboxAddress:
    """Where the provider sandbox listens: every channel's API base URL and SMTP server."""

    http_url: str
    smtp_host: str
    smtp_port: int


@dataclass(frozen=True)
class SeededChannel:
    """One channel: its id, the provider address webhooks are routed by, and the secret its
    provider signs them with (app secret, secret token, auth token or signing key)."""

    type: ChannelType
    id: int
    name: str
    external_id: str
    secret: str

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.type.value}/{self.id}"


@dataclass(frozen=True)
class Seeded:
    """What the demo needs to address, sign for and log in to its tenant."""

    tenant_id: int
    tenant_name: str
    channels: dict[ChannelType, SeededChannel]
    business: BusinessNumber
    twilio_account_sid: str
    email: str
    password: str

    @property
    def whatsapp(self) -> SeededChannel:
        return self.channels[ChannelType.WHATSAPP]


def _setups(
    rng: random.Random,
    tag: str,
    sandbox: SandboxAddress,
    business: BusinessNumber,
    account_sid: str,
) -> dict[ChannelType, tuple[str, ChannelSetup, str]]:
    """(name, set-up as an admin would give it, webhook secret) per channel type."""
    graph = f"{sandbox.http_url}/{GRAPH_VERSION}"

    def meta() -> dict[str, str]:
        return {
            "access_token": "EAAG" + secrets.token_urlsafe(32),
            "app_secret": secrets.token_hex(16),
            "verify_token": secrets.token_hex(8),
        }

    whatsapp, messenger, instagram = meta(), meta(), meta()
    page_id = str(rng.randrange(10**14, 10**15))
    ig_account_id = f"178414{rng.randrange(10**10, 10**11)}"
    bot_id = rng.randrange(10**9, 10**10)
    telegram_secret = secrets.token_urlsafe(24)
    twilio_number = f"+1555{rng.randrange(10**7):07d}"
    auth_token = secrets.token_hex(16)
    address = f"support-{tag}@help.flowdesk.test"
    signing_key = "key-" + secrets.token_hex(16)
    return {
        ChannelType.WHATSAPP: (
            f"WhatsApp {business.display_phone_number}",
            WhatsAppSetup(phone_number_id=business.phone_number_id, api_base_url=graph, **whatsapp),
            whatsapp["app_secret"],
        ),
        ChannelType.MESSENGER: (
            f"Messenger page {page_id}",
            MessengerSetup(page_id=page_id, api_base_url=graph, **messenger),
            messenger["app_secret"],
        ),
        ChannelType.INSTAGRAM: (
            f"Instagram {ig_account_id}",
            # Instagram Login: graph.instagram.com, which the sandbox serves under /instagram.
            InstagramSetup(
                ig_account_id=ig_account_id,
                api_base_url=f"{sandbox.http_url}/instagram/{GRAPH_VERSION}",
                **instagram,
            ),
            instagram["app_secret"],
        ),
        ChannelType.TELEGRAM: (
            f"Telegram bot {bot_id}",
            TelegramSetup(
                bot_token=f"{bot_id}:{secrets.token_urlsafe(27)}",
                webhook_secret=telegram_secret,
                api_base_url=sandbox.http_url,
            ),
            telegram_secret,
        ),
        ChannelType.SMS: (
            f"SMS {twilio_number}",
            SmsSetup(
                phone_number=twilio_number,
                account_sid=account_sid,
                auth_token=auth_token,
                api_base_url=sandbox.http_url,
            ),
            auth_token,
        ),
        ChannelType.EMAIL: (
            f"E-mail {address}",
            EmailSetup(
                address=address,
                inbound_provider="mailgun",
                signing_key=signing_key,
                smtp_host=sandbox.smtp_host,
                smtp_port=sandbox.smtp_port,
                smtp_starttls=False,
            ),
            signing_key,
        ),
    }


def seed_demo_tenant(db: Engine, rng: random.Random, *, sandbox: SandboxAddress) -> Seeded:
    """A fresh tenant, admin and one channel per type, all pointed at the provider sandbox,
    so that this run counts only its own rows."""
    tag = secrets.token_hex(3)
    business = BusinessNumber(
        phone_number_id=str(rng.randrange(10**14, 10**15)),
        display_phone_number=f"1555{rng.randrange(10**7):07d}",
        waba_id=str(rng.randrange(10**14, 10**15)),
    )
    email, password = f"demo-admin-{tag}@example.com", secrets.token_urlsafe(12)
    name = f"FlowDesk Demo {tag}"
    password_hash = hash_password(password)
    account_sid = "AC" + secrets.token_hex(16)
    setups = _setups(rng, tag, sandbox, business, account_sid)
    channels: dict[ChannelType, SeededChannel] = {}
    with system_tx(db) as conn:
        # Earlier runs' channels pointed at sandboxes that are gone: disconnect them, so the
        # engine stops trying to reach them (media downloads, retries).
        conn.execute(
            text(
                "UPDATE channels SET status = 'disconnected', updated_at = now() "
                "WHERE status <> 'disconnected' AND tenant_id IN "
                "(SELECT id FROM tenants WHERE name LIKE 'FlowDesk Demo %')"
            )
        )
        tenant_id = insert_tenant(conn, name=name, time_zone="America/Sao_Paulo")
        insert_user(
            conn,
            tenant_id=tenant_id,
            name="Demo Admin",
            email=email,
            password_hash=password_hash,
            role="admin",
        )
        for kind in CHANNEL_ORDER:
            channel_name, setup, secret = setups[kind]
            external_id, config, channel_secrets = setup.to_channel()
            channel_id = insert_channel(
                conn,
                tenant_id=tenant_id,
                type=kind,
                name=channel_name,
                external_id=external_id,
                config=config,
                secrets=channel_secrets,
            )
            channels[kind] = SeededChannel(kind, channel_id, channel_name, external_id, secret)
    return Seeded(tenant_id, name, channels, business, account_sid, email, password)
