"""Every channel out: an agent's reply over the REST API → worker → the provider sandbox.

The customer writes first (a signed webhook), the agent answers on the ticket, and the test
looks where a user would: the message's status and history in the ticket screen, and what the
provider (the sandbox) received. Failure modes end as the agent would see them: sent after a
delay, or failed with the provider's code and a dead letter for the operator.
"""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.db import system_tx
from tests.support.channels import (
    ALL_PROVIDERS,
    TELEGRAM_GROUP_ID,
    Agent,
    MailgunEmail,
    Messenger,
    ProviderCase,
    SandboxControl,
    SeededChannel,
    SendGridEmail,
    Sms,
    Telegram,
    WhatsApp,
    post,
)
from tests.support.harness import RunningEngine

REPLY = "Olá! Seu pedido #4521 saiu para entrega hoje."


def ids(provider: ProviderCase) -> str:
    return type(provider).__name__.lower()


def customer_writes(
    flowdesk: RunningEngine, channel: SeededChannel, provider: ProviderCase, agent: Agent
) -> int:
    """The customer's first message, through the webhook; returns the ticket it opened."""
    webhook = provider.message(flowdesk.base_url + channel.path, "Oi! Meu pedido não chegou.")
    response = post(flowdesk, channel, webhook)
    assert response.status_code == 200, response.text
    flowdesk.drain()
    ticket_id: int = agent.only_ticket()["id"]
    return ticket_id


def reply(agent: Agent, ticket_id: int, body: str = REPLY) -> int:
    accepted = agent.reply(ticket_id, body)
    assert (accepted["direction"], accepted["status"], accepted["body"]) == ("out", "pending", body)
    message_id: int = accepted["id"]
    return message_id


def dead_letters(db: Engine, message_id: int) -> list[tuple[str, str, int]]:
    """(error_class, error_message, attempts) of the send's dead letters."""
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT error_class, error_message, attempts FROM dead_letters "
                "WHERE actor = 'send_message' AND payload->'args'->>0 = :id"
            ),
            {"id": str(message_id)},
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def sends(recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recorded calls that were message sends (not media look-ups)."""
    return [r for r in recorded if r["method"] == "POST"]


# --- the reply reaches the provider ------------------------------------------------------


@pytest.mark.parametrize("provider", [p for p in ALL_PROVIDERS if p.type.value != "email"], ids=ids)
def test_reply_reaches_the_provider_and_shows_sent(
    provider: ProviderCase,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
) -> None:
    ticket_id = customer_writes(flowdesk, channel, provider, agent)
    message_id = reply(agent, ticket_id)
    shown = agent.wait_for_status(ticket_id, message_id, "sent")

    recorded = sends(sandbox_control.requests(provider.sandbox_provider))
    assert len(recorded) == 1, recorded
    assert recorded[0]["status"] in (200, 201)
    assert provider.sent(recorded[0]) == (provider.account, provider.customer.external_id, REPLY)
    assert shown["provider_message_id"] == recorded[0]["message_id"]
    assert shown["error_code"] is None
    assert [h["status"] for h in shown["status_history"]] == ["sent"]
    ticket = agent.get(f"/api/v1/tickets/{ticket_id}")
    assert (ticket["answered"], ticket["unread_count"]) == (True, 0)


@pytest.mark.parametrize("provider", [MailgunEmail(), SendGridEmail()], ids=ids)
def test_email_reply_threads_onto_the_customers_mail(
    provider: MailgunEmail,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
) -> None:
    webhook, inbound_id = provider.mail("Oi! Meu pedido não chegou.")
    assert post(flowdesk, channel, webhook).status_code == 200
    flowdesk.drain()
    ticket_id = agent.only_ticket()["id"]

    message_id = reply(agent, ticket_id)
    shown = agent.wait_for_status(ticket_id, message_id, "sent")

    mail = sandbox_control.mail()
    assert len(mail) == 1, mail
    headers = mail[0]["headers"]
    assert mail[0]["rcpt_tos"] == [provider.customer.external_id]
    assert headers["From"] == "support@help.acme.test"
    assert headers["Subject"] == f"Re: {provider.subject}"
    assert headers["In-Reply-To"] == f"<{inbound_id}>"
    assert headers["References"].split() == [f"<{inbound_id}>"]
    assert headers["Message-ID"] == f"<{shown['provider_message_id']}>"
    sent_mail = message_from_bytes(mail[0]["raw"].encode(), policy=default_policy)
    content = sent_mail.get_content()
    assert content.strip() == REPLY


# --- delivery statuses come back ---------------------------------------------------------


@pytest.mark.parametrize("provider", [p for p in ALL_PROVIDERS if p.delivery_history], ids=ids)
def test_provider_status_callbacks_move_the_message_forward_in_order(
    provider: ProviderCase,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
) -> None:
    sandbox_control.callbacks_to(
        flowdesk.base_url + channel.path,
        provider=provider.sandbox_provider,
        account=provider.account,
        secret=provider.callback_secret,
    )
    ticket_id = customer_writes(flowdesk, channel, provider, agent)
    message_id = reply(agent, ticket_id)

    final = provider.delivery_history[-1]
    shown = agent.wait_for(
        ticket_id,
        message_id,
        lambda m: [h["status"] for h in m["status_history"]] == list(provider.delivery_history),
        what=f"status history {provider.delivery_history}",
    )
    assert shown["status"] == final
    deliveries = sandbox_control.deliveries()
    assert deliveries and all(d["http_status"] == 200 for d in deliveries), deliveries


# --- failure modes -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", [WhatsApp(), Sms()], ids=ids)
def test_rate_limited_send_is_delayed_not_failed(
    provider: ProviderCase,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
    clean_db: Engine,
) -> None:
    ticket_id = customer_writes(flowdesk, channel, provider, agent)
    sandbox_control.fault(provider.sandbox_provider, "rate_limit", retry_after_s=1)
    message_id = reply(agent, ticket_id)
    shown = agent.wait_for_status(ticket_id, message_id, "sent")

    recorded = sends(sandbox_control.requests(provider.sandbox_provider))
    assert [r["status"] for r in recorded] == [429, recorded[1]["status"]]
    assert recorded[1]["status"] in (200, 201)
    waited_s = (
        datetime.fromisoformat(str(recorded[1]["time"]))
        - datetime.fromisoformat(str(recorded[0]["time"]))
    ).total_seconds()
    assert waited_s >= 0.9  # the provider's Retry-After was honoured
    assert shown["error_code"] is None
    flowdesk.drain(wait_for_inbox=False)
    assert dead_letters(clean_db, message_id) == []


@pytest.mark.parametrize("provider", [WhatsApp(), Sms(), Messenger()], ids=ids)
def test_provider_outage_is_retried_then_sent(
    provider: ProviderCase,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
    clean_db: Engine,
) -> None:
    ticket_id = customer_writes(flowdesk, channel, provider, agent)
    sandbox_control.fault(provider.sandbox_provider, "server_error", count=2)
    message_id = reply(agent, ticket_id)
    shown = agent.wait_for_status(ticket_id, message_id, "sent")

    recorded = sends(sandbox_control.requests(provider.sandbox_provider))
    assert [r["fault"] for r in recorded] == ["server_error", "server_error", None]
    assert shown["provider_message_id"] == recorded[2]["message_id"]
    flowdesk.drain(wait_for_inbox=False)
    assert dead_letters(clean_db, message_id) == []


@pytest.mark.parametrize(
    ("provider", "code"),
    [(WhatsApp(), 131026), (Sms(), 21211), (Telegram(), 403)],
    ids=["whatsapp", "sms", "telegram"],
)
def test_permanent_rejection_fails_at_once_with_the_providers_code(
    provider: ProviderCase,
    code: int,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
    clean_db: Engine,
) -> None:
    ticket_id = customer_writes(flowdesk, channel, provider, agent)
    sandbox_control.fault(provider.sandbox_provider, "permanent", code=code)
    message_id = reply(agent, ticket_id)
    shown = agent.wait_for_status(ticket_id, message_id, "failed")

    assert shown["error_code"] == str(code)
    assert shown["error_message"]
    assert len(sends(sandbox_control.requests(provider.sandbox_provider))) == 1
    flowdesk.drain(wait_for_inbox=False)
    letters = dead_letters(clean_db, message_id)
    assert [(c, attempts) for c, _, attempts in letters] == [("ProviderRejectedError", 1)]


@pytest.mark.parametrize("provider", [Telegram()], ids=ids)
def test_telegram_group_upgraded_to_supergroup_is_followed_once(
    provider: Telegram,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
) -> None:
    assert (
        post(flowdesk, channel, provider.group_message("Alguém sabe o prazo?")).status_code == 200
    )
    flowdesk.drain()
    ticket = agent.only_ticket()
    supergroup = -1001234567890
    sandbox_control.fault("telegram", "migrate", migrate_to_chat_id=supergroup)
    message_id = reply(agent, ticket["id"])
    agent.wait_for_status(ticket["id"], message_id, "sent")

    recorded = sends(sandbox_control.requests("telegram"))
    assert [(r["json"]["chat_id"], r["status"]) for r in recorded] == [
        (TELEGRAM_GROUP_ID, 400),
        (supergroup, 200),
    ]
    contact = agent.contact(ticket["contact"]["id"])
    assert contact["identities"] == [{"channel_type": "telegram", "external_id": str(supergroup)}]


@pytest.mark.parametrize("provider", [MailgunEmail()], ids=ids)
def test_mailbox_refused_550_fails_with_the_smtp_code(
    provider: MailgunEmail,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
    clean_db: Engine,
) -> None:
    ticket_id = customer_writes(flowdesk, channel, provider, agent)
    sandbox_control.fault("smtp", "permanent", code=550)
    message_id = reply(agent, ticket_id)
    shown = agent.wait_for_status(ticket_id, message_id, "failed")

    assert shown["error_code"] == "550"
    assert "Mailbox unavailable" in shown["error_message"]
    assert sandbox_control.mail() == []
    flowdesk.drain(wait_for_inbox=False)
    assert [c for c, _, _ in dead_letters(clean_db, message_id)] == ["ProviderRejectedError"]


@pytest.mark.parametrize("provider", [WhatsApp()], ids=ids)
def test_whatsapp_reply_outside_the_24_hour_window_fails_without_calling_meta(
    provider: WhatsApp,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
    clean_db: Engine,
) -> None:
    ticket_id = customer_writes(flowdesk, channel, provider, agent)
    with system_tx(clean_db) as conn:
        conn.execute(
            text("UPDATE tickets SET last_inbound_at = now() - interval '2 days' WHERE id = :id"),
            {"id": ticket_id},
        )
    message_id = reply(agent, ticket_id)
    shown = agent.wait_for_status(ticket_id, message_id, "failed")

    assert shown["error_code"] == "outside_window"
    assert sandbox_control.requests() == []


@pytest.mark.parametrize("provider", [Sms()], ids=ids)
def test_reply_to_an_opted_out_sms_contact_fails_without_calling_twilio(
    provider: Sms,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    sandbox_control: SandboxControl,
) -> None:
    ticket_id = customer_writes(flowdesk, channel, provider, agent)
    assert (
        post(flowdesk, channel, provider.stop(flowdesk.base_url + channel.path)).status_code == 200
    )
    flowdesk.drain()
    contact_id = agent.get(f"/api/v1/tickets/{ticket_id}")["contact"]["id"]
    assert agent.contact(contact_id)["opted_out"] is True

    message_id = reply(agent, ticket_id)
    shown = agent.wait_for_status(ticket_id, message_id, "failed")

    assert shown["error_code"] == "opted_out"
    assert sandbox_control.requests() == []
