"""Every channel in: a signed webhook over HTTP → broker → worker → what an agent sees.

Per provider: a text and a media (or subject-bearing) message from one customer become one
contact, one pending ticket and two messages; a forged signature is refused and stores
nothing; a webhook of a shape the engine does not handle is acknowledged and kept with its
reason (e-mail: a mail without a sender is dead-lettered, the mail being the only event).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from engine.db import system_tx
from tests.conftest import count
from tests.support.channels import (
    ALL_PROVIDERS,
    Agent,
    ProviderCase,
    SeededChannel,
    post,
)
from tests.support.harness import RunningEngine

pytestmark = pytest.mark.parametrize(
    "provider", ALL_PROVIDERS, ids=lambda p: type(p).__name__.lower()
)


FIRST = "Oi! Meu pedido #4521 não chegou."


def url_of(engine: RunningEngine, channel: SeededChannel) -> str:
    return engine.base_url + channel.path


def test_messages_become_one_contact_one_pending_ticket_and_the_messages(
    provider: ProviderCase,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    agent: Agent,
    clean_db: Engine,
) -> None:
    url = url_of(flowdesk, channel)
    first = post(flowdesk, channel, provider.message(url, FIRST))
    rich, expected = provider.rich_message(url)
    second = post(flowdesk, channel, rich)
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    flowdesk.drain()

    ticket = agent.only_ticket()
    assert ticket["status"] == "pending"
    assert ticket["unread_count"] == 2
    assert ticket["channel"] == {
        "id": channel.channel_id,
        "type": provider.type.value,
        "name": ticket["channel"]["name"],
    }
    assert ticket["contact"]["phone"] == provider.customer.phone
    if provider.customer.name is not None:
        assert ticket["contact"]["name"] == provider.customer.name

    contact = agent.contact(ticket["contact"]["id"])
    assert contact["identities"] == [
        {"channel_type": provider.type.value, "external_id": provider.customer.external_id}
    ]
    assert (contact["phone"], contact["email"]) == (
        provider.customer.phone,
        provider.customer.email,
    )

    messages = agent.messages(ticket["id"])
    assert [(m["direction"], m["status"]) for m in messages] == [("in", "received")] * 2
    # Two messages in one second may list either way round: find each by its content.
    assert sorted(m["body"] == FIRST for m in messages) == [False, True]
    shown = next(m for m in messages if m["body"] != FIRST)
    assert (shown["type"], shown["body"]) == (expected.type, expected.body)
    assert len(shown["media"]) == len(expected.media)
    for got, want in zip(shown["media"], expected.media, strict=True):
        assert {k: got[k] for k in want} == want
    if provider.type.value == "email":
        assert shown["subject"] == provider.subject

    assert count(clean_db, "SELECT count(*) FROM contacts") == 1
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'processed'") == 2


def test_forged_webhook_is_refused_and_an_unhandled_one_is_kept_with_its_reason(
    provider: ProviderCase, flowdesk: RunningEngine, channel: SeededChannel, clean_db: Engine
) -> None:
    url = url_of(flowdesk, channel)
    forged = post(flowdesk, channel, provider.forged(provider.message(url, FIRST)))
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "bad_signature"
    flowdesk.drain()
    assert count(clean_db, "SELECT count(*) FROM inbox") == 0

    webhook, reason = provider.unknown(url)
    response = post(flowdesk, channel, webhook)
    assert 200 <= response.status_code < 300, response.text
    flowdesk.drain()
    with system_tx(clean_db) as conn:
        status, note = conn.execute(text("SELECT status, note FROM inbox")).one()
    assert status == provider.unknown_status
    assert note is not None and reason in note
    if status == "dead":  # the operator finds it among the dead letters, with the same reason
        assert (
            count(
                clean_db,
                "SELECT count(*) FROM dead_letters "
                "WHERE error_class = 'InvalidPayloadError' AND error_message = :reason",
                reason=reason,
            )
            == 1
        )
    for table in ("contacts", "tickets", "messages"):
        assert count(clean_db, f"SELECT count(*) FROM {table}") == 0, table
