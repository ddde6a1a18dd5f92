"""Seed data for the API tests: two active tenants and one suspended, inserted in system scope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from config.settings import load_settings
from engine.security import hash_password

BASE_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STATUSES = ("pending", "open", "closed")
# pyjwt warns about HMAC keys under 32 bytes, so the test key is long enough not to.
SETTINGS = load_settings(
    {"JWT_SECRET": "test-secret-for-the-read-api-0123456789", "JWT_ACCESS_TTL_S": "600"}
)


@dataclass(frozen=True)
class SeededTicket:
    id: int
    status: str
    protocol: str
    contact_id: int
    last_message_at: datetime | None


@dataclass(frozen=True)
class TenantSeed:
    tenant_id: int
    admin_id: int
    admin_name: str
    admin_email: str
    password: str
    channel_id: int
    tickets: tuple[SeededTicket, ...]
    message_ticket_id: int
    message_ids: tuple[int, ...]
    contact_id: int  # has a whatsapp and a telegram identity


@dataclass(frozen=True)
class Seed:
    a: TenantSeed
    b: TenantSeed
    agent_email: str  # a second user of tenant A, for revocation tests
    agent_password: str
    agent_id: int
    suspended_email: str
    suspended_password: str


def expected_order(tickets: tuple[SeededTicket, ...]) -> list[int]:
    """Ticket ids in list order: last_message_at desc nulls last, then id desc."""
    by_id = sorted(tickets, key=lambda t: t.id, reverse=True)
    dated = sorted(
        (t for t in by_id if t.last_message_at is not None),
        key=lambda t: t.last_message_at or BASE_TIME,
        reverse=True,
    )
    undated = [t for t in by_id if t.last_message_at is None]
    return [t.id for t in [*dated, *undated]]


def _one(conn: Connection, sql: str, **params: object) -> int:
    return int(conn.execute(text(sql + " RETURNING id"), params).scalar_one())


def _user(conn: Connection, tenant_id: int, name: str, email: str, password: str, role: str) -> int:
    return _one(
        conn,
        "INSERT INTO users (tenant_id, name, email, password_hash, role)"
        " VALUES (:tenant_id, :name, :email, :hash, :role)",
        tenant_id=tenant_id,
        name=name,
        email=email,
        hash=hash_password(password),
        role=role,
    )


def _contact(conn: Connection, tenant_id: int, name: str, phone: str) -> int:
    return _one(
        conn,
        "INSERT INTO contacts (tenant_id, name, phone) VALUES (:tenant_id, :name, :phone)",
        tenant_id=tenant_id,
        name=name,
        phone=phone,
    )


def _identity(
    conn: Connection, tenant_id: int, contact_id: int, channel_type: str, key: str
) -> None:
    conn.execute(
        text(
            "INSERT INTO contact_identities"
            " (tenant_id, contact_id, channel_type, identity_key, external_id)"
            " VALUES (:tenant_id, :contact_id, :channel_type, :key, :key)"
        ),
        {
            "tenant_id": tenant_id,
            "contact_id": contact_id,
            "channel_type": channel_type,
            "key": key,
        },
    )


def _ticket(
    conn: Connection,
    *,
    tenant_id: int,
    channel_id: int,
    contact_id: int,
    status: str,
    protocol: str,
    last_message_at: datetime | None,
) -> SeededTicket:
    ticket_id = _one(
        conn,
        "INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol, unread_count,"
        " last_message_at) VALUES (:tenant_id, :channel_id, :contact_id, :status, :protocol, 2,"
        " :last_message_at)",
        tenant_id=tenant_id,
        channel_id=channel_id,
        contact_id=contact_id,
        status=status,
        protocol=protocol,
        last_message_at=last_message_at,
    )
    return SeededTicket(ticket_id, status, protocol, contact_id, last_message_at)


def _message(
    conn: Connection, ticket: SeededTicket, tenant_id: int, channel_id: int, **cols: object
) -> int:
    values: dict[str, object] = {
        "tenant_id": tenant_id,
        "ticket_id": ticket.id,
        "contact_id": ticket.contact_id,
        "channel_id": channel_id,
        "direction": "in",
        "type": "text",
        "body": None,
        "media": "[]",
        "location": None,
        "provider_message_id": None,
        "provider_timestamp": BASE_TIME,
        "quoted_message_id": None,
        "status": "received",
        "error_code": None,
        "error_message": None,
        "send_type": None,
        "user_id": None,
    }
    values.update(cols)
    names = ", ".join(values)
    binds = ", ".join(
        f"CAST(:{n} AS jsonb)" if n in ("media", "location") else f":{n}" for n in values
    )
    return _one(conn, f"INSERT INTO messages ({names}) VALUES ({binds})", **values)


def _tenant(
    conn: Connection, label: str, *, n_contacts: int, phone_prefix: str, extra_closed: int
) -> TenantSeed:
    tenant_id = _one(conn, "INSERT INTO tenants (name) VALUES (:name)", name=f"Tenant {label}")
    password = f"pass-{label}-correct horse"
    admin_email = f"Admin@{label.lower()}.test"
    admin_name = f"Admin {label}"
    admin_id = _user(conn, tenant_id, admin_name, admin_email, password, "admin")
    channel_id = _one(
        conn,
        "INSERT INTO channels (tenant_id, type, name, external_id, secrets)"
        " VALUES (:tenant_id, 'whatsapp', :name, :external_id, CAST(:secrets AS jsonb))",
        tenant_id=tenant_id,
        name=f"WhatsApp {label}",
        external_id=f"phone-number-id-{label}",
        secrets=json.dumps({"access_token": "not-a-real-token", "app_secret": "x"}),
    )
    tickets: list[SeededTicket] = []
    contacts: list[int] = []
    for i in range(n_contacts):
        contact_id = _contact(conn, tenant_id, f"Customer {label}{i}", f"{phone_prefix}{i:04d}")
        contacts.append(contact_id)
        # Pairs share a timestamp (tie broken by id) and every seventh has no message yet.
        stamp = None if i % 7 == 3 else BASE_TIME - timedelta(minutes=i // 2)
        tickets.append(
            _ticket(
                conn,
                tenant_id=tenant_id,
                channel_id=channel_id,
                contact_id=contact_id,
                status=STATUSES[i % 3],
                protocol=f"{label}-{i:05d}",
                last_message_at=stamp,
            )
        )
    for j in range(extra_closed):  # history of the first contact: closed tickets
        stamp = None if j % 2 else BASE_TIME - timedelta(minutes=j)
        tickets.append(
            _ticket(
                conn,
                tenant_id=tenant_id,
                channel_id=channel_id,
                contact_id=contacts[0],
                status="closed",
                protocol=f"{label}-old-{j:03d}",
                last_message_at=stamp,
            )
        )
    _identity(conn, tenant_id, contacts[0], "whatsapp", f"{phone_prefix}0000".lstrip("+"))
    _identity(conn, tenant_id, contacts[0], "telegram", f"tg-{label}-1")

    first, second = tickets[0], tickets[1]
    message_ids = [
        _message(
            conn,
            first,
            tenant_id,
            channel_id,
            body="Hello, my order is late",
            provider_message_id=f"wamid.{label}.1",
        )
    ]
    # A message of another ticket in between must not show up in the first one's list.
    _message(conn, second, tenant_id, channel_id, body="other ticket")
    message_ids.append(
        _message(
            conn,
            first,
            tenant_id,
            channel_id,
            type="image",
            media=json.dumps(
                [
                    {
                        "type": "image",
                        "mime_type": "image/jpeg",
                        "provider_media_id": f"media-{label}-1",
                        "url": "https://lookaside.example/secret-signed-url",
                        "filename": None,
                        "caption": "receipt",
                        "sha256": "c0ffee",
                    }
                ]
            ),
            provider_message_id=f"wamid.{label}.2",
        )
    )
    message_ids.append(
        _message(
            conn,
            first,
            tenant_id,
            channel_id,
            direction="out",
            body="Sorry! Checking now.",
            quoted_message_id=message_ids[0],
            status="read",
            send_type="chat",
            user_id=admin_id,
            provider_message_id=f"wamid.{label}.3",
        )
    )
    message_ids.append(
        _message(
            conn,
            first,
            tenant_id,
            channel_id,
            type="location",
            location=json.dumps(
                {"latitude": -23.55, "longitude": -46.63, "name": "Shop", "address": "Av. X"}
            ),
            provider_message_id=f"wamid.{label}.4",
        )
    )
    message_ids.append(
        _message(
            conn,
            first,
            tenant_id,
            channel_id,
            direction="out",
            type="document",
            media=json.dumps(
                [{"type": "document", "mime_type": "application/pdf", "filename": "invoice.pdf"}]
            ),
            status="failed",
            error_code="131047",
            error_message="Re-engagement message",
            send_type="chat",
            provider_timestamp=None,
        )
    )
    return TenantSeed(
        tenant_id=tenant_id,
        admin_id=admin_id,
        admin_name=admin_name,
        admin_email=admin_email,
        password=password,
        channel_id=channel_id,
        tickets=tuple(tickets),
        message_ticket_id=first.id,
        message_ids=tuple(message_ids),
        contact_id=contacts[0],
    )


def seed_database(conn: Connection) -> Seed:
    """Insert everything the API tests read; `conn` is in a system-scoped transaction."""
    a = _tenant(conn, "A", n_contacts=25, phone_prefix="+551199990", extra_closed=4)
    b = _tenant(conn, "B", n_contacts=3, phone_prefix="+551199990", extra_closed=1)
    agent_password = "agent-password-1"
    agent_id = _user(conn, a.tenant_id, "Agent A", "agent@a.test", agent_password, "agent")
    suspended_id = _one(conn, "INSERT INTO tenants (name, status) VALUES ('Gone', 'suspended')")
    _user(conn, suspended_id, "Gone Admin", "admin@gone.test", "gone-password", "admin")
    return Seed(
        a=a,
        b=b,
        agent_email="agent@a.test",
        agent_password=agent_password,
        agent_id=agent_id,
        suspended_email="admin@gone.test",
        suspended_password="gone-password",
    )
