"""POST /api/v1/messages as a tenant's system uses it: the person found or created, one
message and one send per external_key however often (and however concurrently) it retries."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.auth_helpers import (
    Spy,
    Tenant,
    bearer,
    create_client,
    execute,
    new_tenant,
    new_user,
    phone,
    scalar,
    session_of,
)

pytestmark = pytest.mark.anyio

SEND = "/api/v1/messages"


@pytest.fixture
async def admin(http: httpx.AsyncClient, db: AsyncEngine, tenant: Tenant) -> dict[str, str]:
    user = await new_user(db, tenant.id, role="admin")
    return bearer((await session_of(http, user))["access"])


# POST /api/v1/messages -----------------------------------------------------------------


@pytest.fixture
async def sender(http: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    return bearer((await create_client(http, admin, "messages.send"))["token"])


async def test_a_send_to_a_new_number_creates_the_contact_and_queues_one_message(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, db: AsyncEngine, sends: Spy
) -> None:
    number = phone()
    body = {
        "channel_id": tenant.whatsapp_id,
        "to": {"phone": number},
        "body": "Your order has shipped",
        "external_key": f"order-{uuid.uuid4()}",
    }

    response = await http.post(SEND, json=body, headers=sender)

    assert response.status_code == 202, response.text
    out = response.json()
    message = out["message"]
    assert out["replayed"] is False and out["external_key"] == body["external_key"]
    assert message["status"] == "pending" and message["send_type"] == "api"
    assert message["direction"] == "out" and message["body"] == "Your order has shipped"
    assert sends.calls == [(message["id"],)]
    contact = await scalar(db, "SELECT phone FROM contacts WHERE id = :c", c=out["contact_id"])
    assert contact == number
    address = await scalar(
        db,
        "SELECT external_id FROM contact_identities WHERE contact_id = :c AND "
        "channel_type = 'whatsapp'",
        c=out["contact_id"],
    )
    assert address == number.lstrip("+")  # WhatsApp's wa_id form
    row = await scalar(
        db,
        "SELECT t.status || ':' || (m.api_client_id IS NOT NULL)::text FROM messages m "
        "JOIN tickets t ON t.id = m.ticket_id WHERE m.id = :m",
        m=message["id"],
    )
    assert row == "pending:true"


async def test_retrying_with_the_same_key_answers_the_same_message_and_sends_once(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, db: AsyncEngine, sends: Spy
) -> None:
    number = phone()
    key = f"retry-{uuid.uuid4()}"
    body = {
        "channel_id": tenant.whatsapp_id,
        "to": {"phone": number},
        "body": "Hi",
        "external_key": key,
    }
    spaced = {**body, "to": {"phone": f"{number[:3]} ({number[3:5]}) {number[5:]}"}}

    first = await http.post(SEND, json=body, headers=sender)
    second = await http.post(SEND, json=spaced, headers=sender)  # same number, written otherwise

    assert first.status_code == 202
    assert second.status_code == 200, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["replayed"] is True
    assert second.json()["message"]["id"] == first.json()["message"]["id"]
    rows = await scalar(db, "SELECT count(*) FROM messages WHERE external_key = :k", k=key)
    assert rows == 1
    assert len(sends.calls) == 1


async def test_concurrent_retries_record_and_send_one_message(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, db: AsyncEngine, sends: Spy
) -> None:
    key = f"race-{uuid.uuid4()}"
    body = {
        "channel_id": tenant.whatsapp_id,
        "to": {"phone": phone()},
        "body": "Hi",
        "external_key": key,
    }

    answers = await asyncio.gather(*(http.post(SEND, json=body, headers=sender) for _ in range(4)))

    assert sorted(a.status_code for a in answers) == [200, 200, 200, 202]
    assert len({a.json()["message"]["id"] for a in answers}) == 1
    assert await scalar(db, "SELECT count(*) FROM messages WHERE external_key = :k", k=key) == 1
    assert len(sends.calls) == 1


async def test_the_same_key_with_another_payload_is_a_conflict(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, db: AsyncEngine, sends: Spy
) -> None:
    key = f"conflict-{uuid.uuid4()}"
    body = {
        "channel_id": tenant.whatsapp_id,
        "to": {"phone": phone()},
        "body": "A",
        "external_key": key,
    }
    await http.post(SEND, json=body, headers=sender)

    changed = await http.post(SEND, json={**body, "body": "B"}, headers=sender)
    elsewhere = await http.post(SEND, json={**body, "to": {"phone": phone()}}, headers=sender)

    for response in (changed, elsewhere):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["details"][0]["field"] == "external_key"
    assert await scalar(db, "SELECT count(*) FROM messages WHERE external_key = :k", k=key) == 1
    assert len(sends.calls) == 1


async def test_external_keys_belong_to_one_tenant(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, db: AsyncEngine, sends: Spy
) -> None:
    other = await new_tenant(db)
    other_admin = bearer((await session_of(http, await new_user(db, other.id, "admin")))["access"])
    other_sender = bearer((await create_client(http, other_admin, "messages.send"))["token"])
    key = f"shared-{uuid.uuid4()}"

    ours = await http.post(
        SEND, json=_send(tenant, to={"phone": phone()}, body="x", external_key=key), headers=sender
    )
    theirs = await http.post(
        SEND,
        json=_send(other, to={"phone": phone()}, body="y", external_key=key),
        headers=other_sender,
    )
    their_channel = await http.post(
        SEND,
        json=_send(
            tenant,
            channel_id=other.whatsapp_id,
            to={"phone": phone()},
            body="z",
            external_key=f"{key}-2",
        ),
        headers=sender,
    )

    assert ours.status_code == theirs.status_code == 202
    assert ours.json()["message"]["id"] != theirs.json()["message"]["id"]
    assert their_channel.status_code == 404  # another tenant's channel does not exist for us


async def test_sends_by_contact_and_by_channel_address_reach_that_person(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, db: AsyncEngine, sends: Spy
) -> None:
    by_chat = await http.post(
        SEND,
        json={
            "channel_id": tenant.telegram_id,
            "to": {"external_id": "987654321"},
            "body": "Hi",
            "external_key": f"tg-{uuid.uuid4()}",
        },
        headers=sender,
    )
    assert by_chat.status_code == 202, by_chat.text
    contact_id = by_chat.json()["contact_id"]
    ticket_id = by_chat.json()["message"]["ticket_id"]

    again = await http.post(
        SEND,
        json={
            "channel_id": tenant.telegram_id,
            "to": {"contact_id": contact_id},
            "body": "More",
            "external_key": f"tg-{uuid.uuid4()}",
        },
        headers=sender,
    )
    no_address = await http.post(
        SEND,
        json={
            "channel_id": tenant.whatsapp_id,
            "to": {"contact_id": contact_id},
            "body": "x",
            "external_key": f"wa-{uuid.uuid4()}",
        },
        headers=sender,
    )

    assert again.status_code == 202
    assert again.json()["contact_id"] == contact_id
    assert again.json()["message"]["ticket_id"] == ticket_id  # the live ticket, not a new one
    assert no_address.status_code == 422
    assert no_address.json()["error"]["details"][0]["field"] == "to.contact_id"
    await execute(db, "UPDATE tickets SET status = 'closed' WHERE id = :t", t=ticket_id)
    reopened = await http.post(
        SEND,
        json={
            "channel_id": tenant.telegram_id,
            "to": {"contact_id": contact_id},
            "body": "New",
            "external_key": f"tg-{uuid.uuid4()}",
        },
        headers=sender,
    )
    assert reopened.json()["message"]["ticket_id"] != ticket_id


def _send(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel_id": tenant.whatsapp_id,
        "to": {"phone": "+5511912345678"},
        "body": "Hello",
        "external_key": f"bad-{uuid.uuid4()}",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


BAD_SENDS: dict[str, tuple[dict[str, Any], int, str]] = {
    "no key": ({"external_key": None}, 422, "external_key"),
    "empty key": ({"external_key": ""}, 422, "external_key"),
    "long key": ({"external_key": "k" * 201}, 422, "external_key"),
    "two recipients": ({"to": {"phone": "+5511912345678", "contact_id": 1}}, 422, "to"),
    "no recipient": ({"to": {}}, 422, "to"),
    "not a phone": ({"to": {"phone": "+1 23"}}, 422, "to.phone"),
    "letters in phone": ({"to": {"phone": "call me"}}, 422, "to.phone"),
    "nothing to send": ({"body": None}, 422, "body"),
    "unknown field": ({"priority": "high"}, 422, "priority"),
    "NUL in body": ({"body": "a\u0000b"}, 422, "body"),
    "huge channel id": ({"channel_id": 2**63}, 422, "channel_id"),
    "huge quoted id": ({"quoted_message_id": 2**63}, 422, "quoted_message_id"),
    "unknown channel": ({"channel_id": 2**62}, 404, ""),
    "unknown contact": ({"to": {"contact_id": 2**62}}, 404, ""),
}


@pytest.mark.parametrize("case", list(BAD_SENDS))
async def test_a_bad_send_is_refused_and_sends_nothing(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, sends: Spy, case: str
) -> None:
    changes, status, field = BAD_SENDS[case]

    response = await http.post(SEND, json=_send(tenant, **changes), headers=sender)

    assert response.status_code == status, response.text
    if field:
        fields = {d["field"] for d in response.json()["error"]["details"]}
        assert any(f == field or f.startswith(f"{field}.") for f in fields), fields
    assert sends.calls == []


async def test_a_phone_number_on_a_telegram_channel_is_refused(
    http: httpx.AsyncClient, sender: dict[str, str], tenant: Tenant, sends: Spy
) -> None:
    body = _send(tenant, channel_id=tenant.telegram_id)

    response = await http.post(SEND, json=body, headers=sender)

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "to.phone"
