"""End to end: a scripted customer conversation over signed WhatsApp webhooks, through the real
engine (web, broker, worker) and the provider sandbox, from greeting to assignment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from adapters.sandbox import Sandbox
from tests.automation.flow_samples import menu_flow
from tests.support.channels import SandboxControl, SeededChannel, WhatsApp, post, seed_channel
from tests.support.harness import RunningEngine, running_engine, wait_until

WHATSAPP = WhatsApp()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def control(sandbox: Sandbox) -> Iterator[SandboxControl]:
    control = SandboxControl(sandbox.http_url)
    control.reset()
    yield control
    control.close()


@pytest.fixture
def channel(clean_db: Engine, sandbox: Sandbox) -> SeededChannel:
    return seed_channel(clean_db, WHATSAPP.type, WHATSAPP.setup(sandbox.http_url, 0))


@pytest.fixture
def flowdesk(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> Iterator[RunningEngine]:
    with running_engine(
        database_url=database_url, redis_url=redis_url, queue_prefix=queue_prefix
    ) as running:
        yield running


@pytest.fixture
def admin(flowdesk: RunningEngine, channel: SeededChannel) -> Iterator[httpx.Client]:
    client = flowdesk.client()
    login = client.post(
        "/api/v1/auth/login",
        json={"email": channel.seeded.admin_email, "password": channel.seeded.admin_password},
    )
    assert login.status_code == 200, login.text
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    yield client
    client.close()


def customer_says(flowdesk: RunningEngine, channel: SeededChannel, words: str) -> None:
    response = post(flowdesk, channel, WHATSAPP.message(flowdesk.base_url + channel.path, words))
    assert response.status_code == 200, response.text
    flowdesk.drain()


def sent_texts(control: SandboxControl) -> list[str]:
    """What the customer received, in order: the sandbox saw every send."""
    return [
        WHATSAPP.sent(r)[2]
        for r in control.requests("whatsapp")
        if r["method"] == "POST" and "text" in (r.get("json") or {})
    ]


def wait_for_texts(control: SandboxControl, count: int) -> list[str]:
    wait_until(lambda: len(sent_texts(control)) >= count, 20, f"{count} messages at the provider")
    return sent_texts(control)


def ticket_of(admin: httpx.Client) -> dict[str, Any]:
    tickets = admin.get("/api/v1/tickets").json()["items"]
    assert len(tickets) == 1, tickets
    ticket: dict[str, Any] = admin.get(f"/api/v1/tickets/{tickets[0]['id']}").json()
    return ticket


def test_greeting_menu_answer_queue_and_online_agent(
    flowdesk: RunningEngine,
    channel: SeededChannel,
    admin: httpx.Client,
    control: SandboxControl,
) -> None:
    queues = {
        name: admin.post(
            "/api/v1/queues", json={"name": name, "distribution": "round_robin"}
        ).json()["id"]
        for name in ("Sales", "Support")
    }
    agents = {}
    for name in ("Away", "Bruno"):
        created = admin.post(
            "/api/v1/users",
            json={
                "name": name,
                "email": f"{name.lower()}@acme.test",
                "password": "long-enough-password",
                "role": "agent",
            },
        )
        assert created.status_code == 201, created.text
        agents[name] = created.json()["id"]
    members = admin.put(
        f"/api/v1/queues/{queues['Sales']}/members", json={"user_ids": list(agents.values())}
    )
    online = admin.patch(f"/api/v1/users/{agents['Bruno']}", json={"online": True})
    assert (members.status_code, online.status_code) == (200, 200), (members.text, online.text)
    flow = admin.post(
        "/api/v1/chat-flows",
        json={
            "name": "Menu",
            "definition": menu_flow(sales_queue=queues["Sales"], support_queue=queues["Support"]),
        },
    )
    assert flow.status_code == 201, flow.text
    attach = admin.put(
        f"/api/v1/channels/{channel.channel_id}/chat-flow", json={"chat_flow_id": flow.json()["id"]}
    )
    assert attach.status_code == 200, attach.text

    customer_says(flowdesk, channel, "Oi, boa tarde")
    greeting, menu = wait_for_texts(control, 2)
    assert greeting.endswith(", Ana! Welcome to Acme.")
    assert menu == "How can we help?\n1 - Sales\n2 - Support\n3 - Opening hours"
    waiting = ticket_of(admin)
    assert (waiting["queue_id"], waiting["user_id"], waiting["status"]) == (None, None, "pending")

    customer_says(flowdesk, channel, "1")
    assert wait_for_texts(control, 3)[2] == "Connecting you to sales."
    ticket = ticket_of(admin)
    assert (ticket["queue_id"], ticket["user_id"]) == (queues["Sales"], agents["Bruno"])
    bot_messages = [
        m
        for m in admin.get(f"/api/v1/tickets/{ticket['id']}/messages").json()["items"]
        if m["direction"] == "out"
    ]
    assert len(bot_messages) == 3
    assert {m["status"] for m in bot_messages} <= {"sent", "delivered", "read"}


def test_out_of_hours_message_once_over_two_messages(
    flowdesk: RunningEngine,
    channel: SeededChannel,
    admin: httpx.Client,
    control: SandboxControl,
) -> None:
    closed_all_week = {"time_zone": "America/Sao_Paulo", "week": {}}
    for key, value in (
        ("business_hours", closed_all_week),
        ("out_of_hours_message", "Hi {{first_name}}, we are closed now. We answer from 9h."),
    ):
        response = admin.put(f"/api/v1/settings/{key}", json={"value": value})
        assert response.status_code == 200, response.text

    customer_says(flowdesk, channel, "Oi")
    assert wait_for_texts(control, 1) == ["Hi Ana, we are closed now. We answer from 9h."]
    customer_says(flowdesk, channel, "Alguém aí?")
    ticket = ticket_of(admin)
    messages = admin.get(f"/api/v1/tickets/{ticket['id']}/messages").json()["items"]
    assert [m["direction"] for m in messages] == ["in", "out", "in"]
    assert len(sent_texts(control)) == 1
