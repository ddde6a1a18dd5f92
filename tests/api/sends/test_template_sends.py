"""WhatsApp template messages from an agent (ticket reply) and from a tenant's system
(POST /api/v1/messages): recorded as templates on WhatsApp, refused naming `template` elsewhere."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.auth_helpers import (
    Spy,
    Tenant,
    bearer,
    create_client,
    new_user,
    phone,
    session_of,
)
from tests.api.resources_helpers import error_fields
from tests.api.tickets_helpers import World, new_world, rows, stub_broker

pytestmark = pytest.mark.anyio

TEMPLATE = {"name": "order_update", "language": "pt_BR", "parameters": ["Ana", "P0001"]}


# -- a ticket reply -------------------------------------------------------------------------


@pytest.fixture
async def world(db: AsyncEngine) -> World:
    return await new_world(db)


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    yield from stub_broker()


async def reply(
    client: httpx.AsyncClient, world: World, ticket: str, body: dict[str, object]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/tickets/{world.tickets[ticket]}/messages", json=body, headers=world.auth("agent")
    )


async def test_an_agent_sends_a_template_on_a_whatsapp_ticket(
    client: httpx.AsyncClient, world: World, db: AsyncEngine, broker: StubBroker
) -> None:
    response = await reply(client, world, "mine", {"template": TEMPLATE})
    assert response.status_code == 202, response.text
    stored = await rows(
        db, "SELECT type, body, template FROM messages WHERE id = :id", id=response.json()["id"]
    )
    assert stored == [{"type": "template", "body": None, "template": TEMPLATE}]


async def test_a_template_on_a_telegram_ticket_is_refused_naming_the_field(
    client: httpx.AsyncClient, world: World, db: AsyncEngine, broker: StubBroker
) -> None:
    response = await reply(client, world, "closed_mine", {"template": TEMPLATE})
    assert response.status_code == 422, response.text
    assert error_fields(response) == ["template"]
    assert "WhatsApp channels only" in response.text
    sent = await rows(
        db, "SELECT id FROM messages WHERE ticket_id = :t", t=world.tickets["closed_mine"]
    )
    assert sent == []


# -- an integration send --------------------------------------------------------------------


@pytest.fixture
async def sender(http: httpx.AsyncClient, db: AsyncEngine, tenant: Tenant) -> dict[str, str]:
    admin = bearer((await session_of(http, await new_user(db, tenant.id, role="admin")))["access"])
    return bearer((await create_client(http, admin, "messages.send"))["token"])


async def test_a_system_sends_a_template_to_a_number_on_whatsapp(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, sends: Spy
) -> None:
    body = {
        "channel_id": tenant.whatsapp_id,
        "to": {"phone": phone()},
        "template": TEMPLATE,
        "external_key": f"order-{uuid.uuid4()}",
    }
    response = await http.post("/api/v1/messages", json=body, headers=sender)
    assert response.status_code == 202, response.text
    message = response.json()["message"]
    assert message["type"] == "template"
    assert sends.calls == [(message["id"],)]


async def test_a_template_on_a_telegram_channel_is_refused_and_nothing_is_sent(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, sends: Spy
) -> None:
    body = {
        "channel_id": tenant.telegram_id,
        "to": {"external_id": "123456789"},
        "template": TEMPLATE,
        "external_key": f"order-{uuid.uuid4()}",
    }
    response = await http.post("/api/v1/messages", json=body, headers=sender)
    assert response.status_code == 422, response.text
    assert error_fields(response) == ["template"]
    assert sends.calls == []
