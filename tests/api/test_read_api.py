"""Login and the read API as a frontend sees them: tokens, tickets, messages, tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api import auth
from engine.db import async_system_tx, async_tenant_tx
from engine.queries.tickets import get_contact, get_ticket, list_messages
from engine.security import issue_access_token, verify_password
from tests.api.helpers import SETTINGS, Seed, TenantSeed, expected_order

pytestmark = pytest.mark.anyio

SECRET = SETTINGS.JWT_SECRET


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def token_for(client: httpx.AsyncClient, tenant: TenantSeed) -> str:
    response = await login(client, tenant.admin_email, tenant.password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def walk_tickets(client: httpx.AsyncClient, token: str, query: str) -> list[int]:
    """Every ticket id the list returns, following next_cursor to the end."""
    ids: list[int] = []
    cursor: str | None = None
    for _ in range(100):
        url = f"/api/v1/tickets?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.text
        page = response.json()
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination never ended")


# Login ---------------------------------------------------------------------------------


async def test_login_returns_a_bearer_token_and_the_user(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    response = await login(client, seed.a.admin_email, seed.a.password)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "user",
    }
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == SETTINGS.JWT_ACCESS_TTL_S
    assert body["user"] == {
        "id": seed.a.admin_id,
        "tenant_id": seed.a.tenant_id,
        "role": "admin",
        "name": seed.a.admin_name,
    }
    tickets = await client.get("/api/v1/tickets", headers=bearer(body["access_token"]))
    assert tickets.status_code == 200


async def test_login_email_ignores_case_and_surrounding_spaces(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    response = await login(client, f"  {seed.b.admin_email.upper()} ", seed.b.password)

    assert response.status_code == 200
    assert response.json()["user"]["tenant_id"] == seed.b.tenant_id


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    wrong_password = await login(client, seed.a.admin_email, "not-the-password")
    unknown_email = await login(client, "nobody@nowhere.test", "not-the-password")
    other_tenants_password = await login(client, seed.a.admin_email, seed.b.password)

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json() == other_tenants_password.json()
    assert wrong_password.json()["error"]["code"] == "invalid_credentials"
    assert "password" in wrong_password.json()["error"]["message"].lower()


async def test_an_unknown_email_still_costs_a_bcrypt_check(
    client: httpx.AsyncClient, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So response time does not tell an attacker which e-mails have accounts."""
    checked: list[str] = []

    def spy(plain: str, hashed: str) -> bool:
        checked.append(hashed)
        return verify_password(plain, hashed)

    monkeypatch.setattr(auth, "verify_password", spy)

    response = await login(client, "nobody@nowhere.test", "whatever")

    assert response.status_code == 401
    assert len(checked) == 1 and checked[0].startswith("$2b$")


async def test_users_of_a_suspended_tenant_cannot_log_in(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    response = await login(client, seed.suspended_email, seed.suspended_password)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


@pytest.mark.parametrize(
    ("content", "status", "fields"),
    [
        (b"{not json", 400, set()),
        (b"", 400, set()),
        (b"{}", 422, {"email", "password"}),
        (b"[]", 422, {"body"}),
        (b'{"email": 5, "password": "hunter2-secret"}', 422, {"email"}),
        (b'{"email": "a@b.test", "password": ""}', 422, {"password"}),
        (b'{"email": "a@b.test", "password": "hunter2-secret", "admin": true}', 422, {"admin"}),
    ],
)
async def test_a_bad_login_body_is_rejected_naming_the_field(
    client: httpx.AsyncClient, seed: Seed, content: bytes, status: int, fields: set[str]
) -> None:
    response = await client.post(
        "/api/v1/auth/login", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == ("invalid_json" if status == 400 else "invalid_request")
    assert {d["field"] for d in error["details"]} == fields
    for field in fields:
        assert field in error["message"]
    assert "hunter2-secret" not in response.text  # the password is never echoed back


async def test_an_oversized_login_body_is_refused(client: httpx.AsyncClient, seed: Seed) -> None:
    response = await login(client, seed.a.admin_email, "x" * 10_000)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


# Bearer tokens -------------------------------------------------------------------------


def _token(seed: Seed, **overrides: object) -> str:
    claims: dict[str, object] = {
        "typ": "access",
        "sub": str(seed.a.admin_id),
        "tenant_id": seed.a.tenant_id,
        "role": "admin",
        "token_version": 0,
        "iat": int(datetime.now(UTC).timestamp()),
        "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
    }
    secret = str(overrides.pop("secret", SECRET))
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")


BAD_AUTHORIZATION = {
    "missing": None,
    "empty bearer": "Bearer ",
    "basic scheme": "Basic YWRtaW46YWRtaW4=",
    "garbage": "Bearer not.a.jwt",
    "forged signature": "Bearer {forged}",
    "expired": "Bearer {expired}",
    "refresh token": "Bearer {refresh}",
    "unsigned": "Bearer {unsigned}",
    "claims another tenant": "Bearer {other_tenant}",
    "unknown user": "Bearer {unknown_user}",
}


@pytest.mark.parametrize("case", list(BAD_AUTHORIZATION))
async def test_requests_without_a_valid_token_get_401(
    client: httpx.AsyncClient, seed: Seed, case: str
) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    tokens = {
        "forged": _token(seed, secret="another-secret-of-32-bytes-or-more!!"),
        "expired": issue_access_token(
            user_id=seed.a.admin_id,
            tenant_id=seed.a.tenant_id,
            role="admin",
            token_version=0,
            secret=SECRET,
            ttl_s=60,
            now=past,
        ),
        "refresh": _token(seed, typ="refresh"),
        "unsigned": jwt.encode(
            {"typ": "access", "sub": str(seed.a.admin_id), "tenant_id": seed.a.tenant_id},
            key="",
            algorithm="none",
        ),
        # Correctly signed, but the user is not in that tenant: the revocation check fails.
        "other_tenant": _token(seed, tenant_id=seed.b.tenant_id),
        "unknown_user": _token(seed, sub="987654321"),
    }
    template = BAD_AUTHORIZATION[case]
    headers = {} if template is None else {"Authorization": template.format(**tokens)}

    for url in (
        "/api/v1/tickets",
        f"/api/v1/tickets/{seed.a.message_ticket_id}",
        f"/api/v1/tickets/{seed.a.message_ticket_id}/messages",
        f"/api/v1/contacts/{seed.a.contact_id}",
    ):
        response = await client.get(url, headers=headers)
        assert response.status_code == 401, (url, response.text)
        expected = "unauthenticated" if template is None else "invalid_token"
        assert response.json()["error"]["code"] == expected
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_bumping_token_version_revokes_existing_tokens(
    client: httpx.AsyncClient, db: AsyncEngine, seed: Seed
) -> None:
    first = await login(client, seed.agent_email, seed.agent_password)
    old_token = first.json()["access_token"]
    assert (await client.get("/api/v1/tickets", headers=bearer(old_token))).status_code == 200

    async with async_system_tx(db) as conn:
        await conn.execute(
            text("UPDATE users SET token_version = token_version + 1 WHERE id = :id"),
            {"id": seed.agent_id},
        )

    revoked = await client.get("/api/v1/tickets", headers=bearer(old_token))
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "invalid_token"
    second = await login(client, seed.agent_email, seed.agent_password)
    new_token = second.json()["access_token"]
    assert (await client.get("/api/v1/tickets", headers=bearer(new_token))).status_code == 200


# Tickets -------------------------------------------------------------------------------


async def test_ticket_json_has_the_documented_shape(client: httpx.AsyncClient, seed: Seed) -> None:
    token = await token_for(client, seed.a)
    ticket = seed.a.tickets[0]

    response = await client.get(f"/api/v1/tickets/{ticket.id}", headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "id",
        "status",
        "protocol",
        "channel",
        "contact",
        "unread_count",
        "answered",
        "last_message_at",
        "queue_id",
        "user_id",
        "created_at",
    }
    assert body["id"] == ticket.id
    assert body["status"] == ticket.status
    assert body["protocol"] == ticket.protocol
    assert body["channel"] == {"id": seed.a.channel_id, "type": "whatsapp", "name": "WhatsApp A"}
    assert body["contact"] == {
        "id": ticket.contact_id,
        "name": "Customer A0",
        "phone": "+5511999900000",
    }
    assert body["unread_count"] == 2
    assert body["answered"] is False
    assert body["queue_id"] is None
    assert body["user_id"] is None
    assert ticket.last_message_at is not None
    assert datetime.fromisoformat(body["last_message_at"]) == ticket.last_message_at
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert "secrets" not in response.text and "not-a-real-token" not in response.text


@pytest.mark.parametrize("status", ["pending", "open", "closed"])
async def test_ticket_list_filters_by_status(
    client: httpx.AsyncClient, seed: Seed, status: str
) -> None:
    token = await token_for(client, seed.a)

    response = await client.get(f"/api/v1/tickets?status={status}", headers=bearer(token))

    assert response.status_code == 200
    items = response.json()["items"]
    assert {item["status"] for item in items} == {status}
    assert {item["id"] for item in items} == {t.id for t in seed.a.tickets if t.status == status}


@pytest.mark.parametrize(("status", "limit"), [(None, 4), (None, 1), ("closed", 3), ("open", 2)])
async def test_ticket_pages_cover_every_ticket_once_in_order(
    client: httpx.AsyncClient, seed: Seed, status: str | None, limit: int
) -> None:
    token = await token_for(client, seed.a)
    query = f"limit={limit}" + (f"&status={status}" if status else "")
    wanted = tuple(t for t in seed.a.tickets if status is None or t.status == status)

    ids = await walk_tickets(client, token, query)

    assert ids == expected_order(wanted)  # no gaps, no duplicates, newest activity first


async def test_ticket_list_defaults_to_one_page_of_fifty(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    token = await token_for(client, seed.a)

    body = (await client.get("/api/v1/tickets", headers=bearer(token))).json()

    assert len(seed.a.tickets) < 50
    assert [item["id"] for item in body["items"]] == expected_order(seed.a.tickets)
    assert body["next_cursor"] is None


# Messages and contacts -----------------------------------------------------------------


async def test_messages_of_a_ticket_come_in_order_with_media(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    token = await token_for(client, seed.a)
    url = f"/api/v1/tickets/{seed.a.message_ticket_id}/messages"

    response = await client.get(url, headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert body["next_after_id"] is None
    messages = body["items"]
    assert [m["id"] for m in messages] == list(seed.a.message_ids)
    assert {m["ticket_id"] for m in messages} == {seed.a.message_ticket_id}
    text_in, image, reply, location, failed = messages
    assert set(text_in) >= {
        "id",
        "ticket_id",
        "direction",
        "type",
        "body",
        "media",
        "location",
        "provider_message_id",
        "quoted_message_id",
        "status",
        "error_code",
        "error_message",
        "provider_timestamp",
        "created_at",
    }
    assert (text_in["direction"], text_in["type"], text_in["body"]) == (
        "in",
        "text",
        "Hello, my order is late",
    )
    assert text_in["media"] == []
    assert text_in["provider_message_id"] == "wamid.A.1"
    assert datetime.fromisoformat(text_in["provider_timestamp"]) == datetime(
        2024, 5, 1, 12, tzinfo=UTC
    )
    assert image["media"] == [
        {
            "type": "image",
            "mime_type": "image/jpeg",
            "provider_media_id": "media-A-1",
            "filename": None,
            "caption": "receipt",
        }
    ]
    assert "secret-signed-url" not in response.text
    assert (reply["direction"], reply["status"], reply["quoted_message_id"]) == (
        "out",
        "read",
        seed.a.message_ids[0],
    )
    assert location["location"]["latitude"] == -23.55
    assert location["location"]["name"] == "Shop"
    assert failed["media"][0]["filename"] == "invoice.pdf"
    assert (failed["status"], failed["error_code"], failed["error_message"]) == (
        "failed",
        "131047",
        "Re-engagement message",
    )
    assert failed["provider_timestamp"] is None


async def test_messages_paginate_with_after_id(client: httpx.AsyncClient, seed: Seed) -> None:
    token = await token_for(client, seed.a)
    url = f"/api/v1/tickets/{seed.a.message_ticket_id}/messages?limit=2"
    seen: list[int] = []
    after_id: int | None = None

    for _ in range(10):
        page_url = url + (f"&after_id={after_id}" if after_id is not None else "")
        page = (await client.get(page_url, headers=bearer(token))).json()
        seen.extend(m["id"] for m in page["items"])
        after_id = page["next_after_id"]
        if after_id is None:
            break

    assert seen == list(seed.a.message_ids)


async def test_contact_card_lists_its_identities(client: httpx.AsyncClient, seed: Seed) -> None:
    token = await token_for(client, seed.a)

    response = await client.get(f"/api/v1/contacts/{seed.a.contact_id}", headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == seed.a.contact_id
    assert (body["name"], body["phone"]) == ("Customer A0", "+5511999900000")
    assert body["identities"] == [
        {"channel_type": "whatsapp", "external_id": "5511999900000"},
        {"channel_type": "telegram", "external_id": "tg-A-1"},
    ]


# Tenant isolation ----------------------------------------------------------------------


async def test_a_tenant_cannot_read_another_tenants_rows(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    token_a = await token_for(client, seed.a)
    token_b = await token_for(client, seed.b)
    urls = [
        f"/api/v1/tickets/{seed.b.message_ticket_id}",
        f"/api/v1/tickets/{seed.b.message_ticket_id}/messages",
        f"/api/v1/contacts/{seed.b.contact_id}",
    ]

    for url in urls:
        own = await client.get(url, headers=bearer(token_b))
        assert own.status_code == 200, url  # the row exists...
        foreign = await client.get(url, headers=bearer(token_a))
        assert foreign.status_code == 404, url  # ...but not for tenant A
        assert foreign.json()["error"]["code"] == "not_found"
        assert "Customer B" not in foreign.text

    listed = await walk_tickets(client, token_a, "limit=7")
    assert set(listed).isdisjoint(t.id for t in seed.b.tickets)
    assert set(listed) == {t.id for t in seed.a.tickets}


async def test_row_level_security_hides_other_tenants_even_when_asked_by_id(
    db: AsyncEngine, seed: Seed
) -> None:
    """The second line of defence: a tenant-A transaction asking for tenant B's ids sees none."""
    b_ticket = seed.b.message_ticket_id
    async with async_tenant_tx(db, seed.a.tenant_id) as conn:
        assert await get_ticket(conn, seed.b.tenant_id, b_ticket) is None
        assert await get_contact(conn, seed.b.tenant_id, seed.b.contact_id) is None
        page = await list_messages(conn, seed.b.tenant_id, b_ticket, limit=10, after_id=None)
        assert page.items == ()
        unfiltered = await conn.execute(text("SELECT DISTINCT tenant_id FROM tickets"))
        assert [row[0] for row in unfiltered] == [seed.a.tenant_id]


async def test_unknown_or_out_of_range_ids_are_404(client: httpx.AsyncClient, seed: Seed) -> None:
    token = await token_for(client, seed.a)

    for url in (
        "/api/v1/tickets/987654321",
        "/api/v1/tickets/0",
        "/api/v1/tickets/99999999999999999999999",
        "/api/v1/tickets/987654321/messages",
        "/api/v1/contacts/987654321",
    ):
        response = await client.get(url, headers=bearer(token))
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


# Query parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("tickets", "status=bogus", "status"),
        ("tickets", "status=", "status"),
        ("tickets", "limit=0", "limit"),
        ("tickets", "limit=101", "limit"),
        ("tickets", "limit=ten", "limit"),
        ("tickets", "cursor=garbage", "cursor"),
        ("tickets", "cursor=WzEsMiwzXQ", "cursor"),  # valid base64 of a wrong shape
        # ["0001-01-01T00:00:00+14:00",1]: a date before year 1 once in UTC
        ("tickets", "cursor=WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwgMV0", "cursor"),
        ("tickets", "status=open&status=closed", "status"),
        ("tickets", "stauts=open", "stauts"),
        ("messages", "limit=-1", "limit"),
        ("messages", "after_id=-1", "after_id"),
        ("messages", "after_id=abc", "after_id"),
    ],
)
async def test_bad_query_parameters_are_named_in_the_error(
    client: httpx.AsyncClient, seed: Seed, path: str, query: str, parameter: str
) -> None:
    token = await token_for(client, seed.a)
    base = (
        "/api/v1/tickets"
        if path == "tickets"
        else f"/api/v1/tickets/{seed.a.message_ticket_id}/messages"
    )

    response = await client.get(f"{base}?{query}", headers=bearer(token))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert parameter in error["message"]
    assert [d["field"] for d in error["details"]] == [parameter]
