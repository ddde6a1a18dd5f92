"""Editing and deleting a message the provider already has, as an agent does it over the API.

Telegram lets a bot edit and delete its own messages; the other channels' providers don't, and
the API says so up front. A change shows as pending on the message until the worker has asked
the provider; the message itself changes only once the provider agrees.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.channels import (
    Agent,
    ProviderCase,
    SandboxControl,
    SeededChannel,
    Telegram,
    WhatsApp,
    post,
)
from tests.support.harness import RunningEngine

REPLY = "Seu pedido sai hoje às 15h."
FIXED = "Seu pedido sai hoje às 16h."


def sent_reply(
    flowdesk: RunningEngine, channel: SeededChannel, provider: ProviderCase, agent: Agent
) -> tuple[int, int]:
    """(ticket id, message id) of an agent's reply the provider has accepted."""
    webhook = provider.message(flowdesk.base_url + channel.path, "Quando chega meu pedido?")
    assert post(flowdesk, channel, webhook).status_code == 200
    flowdesk.drain()
    ticket_id: int = agent.only_ticket()["id"]
    message_id: int = agent.reply(ticket_id, REPLY)["id"]
    agent.wait_for_status(ticket_id, message_id, "sent")
    return ticket_id, message_id


def changes(sandbox_control: SandboxControl) -> list[dict[str, Any]]:
    return [
        r
        for r in sandbox_control.requests("telegram")
        if r["path"].rsplit("/", 1)[-1] in {"editMessageText", "deleteMessage"}
    ]


def change_settled(message: dict[str, Any]) -> bool:
    change = message["last_change"]
    return change is not None and change["status"] != "pending"


@pytest.mark.parametrize("provider", [Telegram()], ids=["telegram"])
def test_editing_a_sent_telegram_message_changes_it_at_the_provider(
    provider: Telegram,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
) -> None:
    ticket_id, message_id = sent_reply(flowdesk, channel, provider, agent)

    response = agent.call("PATCH", f"/api/v1/messages/{message_id}", {"body": FIXED})
    assert response.status_code == 200, response.text
    answered = response.json()
    assert answered["body"] == REPLY  # not yet: the provider has not agreed
    assert answered["last_change"]["kind"] == "edit"
    assert answered["last_change"]["status"] == "pending"

    shown = agent.wait_for(ticket_id, message_id, change_settled, what="edit settled")
    assert shown["last_change"]["status"] == "done", shown
    assert shown["body"] == FIXED
    assert shown["edited_at"] is not None
    recorded = changes(sandbox_control)
    assert len(recorded) == 1
    chat_id, telegram_id = shown["provider_message_id"].split(":")
    assert recorded[0]["json"] == {
        "chat_id": int(chat_id),
        "message_id": int(telegram_id),
        "text": FIXED,
    }


@pytest.mark.parametrize("provider", [Telegram()], ids=["telegram"])
def test_deleting_a_sent_telegram_message_deletes_it_at_the_provider(
    provider: Telegram,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
) -> None:
    ticket_id, message_id = sent_reply(flowdesk, channel, provider, agent)

    response = agent.call("DELETE", f"/api/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    assert response.json()["last_change"]["kind"] == "delete"

    shown = agent.wait_for(ticket_id, message_id, change_settled, what="deletion settled")
    assert shown["last_change"]["status"] == "done", shown
    assert shown["deleted_at"] is not None
    assert shown["status"] == "sent"  # deleted, not failed: it was delivered before

    again = agent.call("DELETE", f"/api/v1/messages/{message_id}")
    assert again.status_code == 409
    assert "already deleted" in again.json()["error"]["message"]
    assert len(changes(sandbox_control)) == 1


@pytest.mark.parametrize("provider", [Telegram()], ids=["telegram"])
def test_a_provider_refusal_keeps_the_message_and_shows_why(
    provider: Telegram,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
) -> None:
    ticket_id, message_id = sent_reply(flowdesk, channel, provider, agent)
    sandbox_control.fault("telegram", "permanent", code=400)

    agent.call("PATCH", f"/api/v1/messages/{message_id}", {"body": FIXED})

    shown = agent.wait_for(ticket_id, message_id, change_settled, what="edit settled")
    assert shown["last_change"]["status"] == "failed"
    assert shown["last_change"]["error_code"] == "400"
    assert shown["last_change"]["error_message"]
    assert (shown["body"], shown["edited_at"]) == (REPLY, None)
    # A refused change does not block the next one.
    retry = agent.call("PATCH", f"/api/v1/messages/{message_id}", {"body": FIXED})
    assert retry.status_code == 200, retry.text
    shown = agent.wait_for(
        ticket_id,
        message_id,
        lambda m: m["last_change"]["status"] == "done",
        what="second edit done",
    )
    assert shown["body"] == FIXED


@pytest.mark.parametrize("provider", [WhatsApp()], ids=["whatsapp"])
def test_channels_whose_provider_cannot_change_messages_say_so(
    provider: WhatsApp,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
) -> None:
    ticket_id, message_id = sent_reply(flowdesk, channel, provider, agent)

    for method, body in (("PATCH", {"body": FIXED}), ("DELETE", None)):
        response = agent.call(method, f"/api/v1/messages/{message_id}", body)
        assert response.status_code == 409, response.text
        assert "whatsapp does not let a sent message be" in response.json()["error"]["message"]
    assert agent.message(ticket_id, message_id)["last_change"] is None


@pytest.mark.parametrize("provider", [Telegram()], ids=["telegram"])
def test_a_customers_message_cannot_be_changed(
    provider: Telegram,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
) -> None:
    webhook = provider.message(flowdesk.base_url + channel.path, "Oi")
    assert post(flowdesk, channel, webhook).status_code == 200
    flowdesk.drain()
    ticket_id = agent.only_ticket()["id"]
    received = agent.messages(ticket_id)[0]

    response = agent.call("PATCH", f"/api/v1/messages/{received['id']}", {"body": "x"})
    assert response.status_code == 409
    assert "received from the contact" in response.json()["error"]["message"]
