"""Batched sends through the real worker to the provider sandbox: how bulk senders (sweeper,
campaigns) enqueue. A provider hiccup retries only the message it hit, in a batch of its own,
and every status reaches the outbox published in-line, without a publish_outbox message."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from actors.outbound import enqueue_sends
from engine.db import system_tx, tenant_tx
from pipelines.outbound import SendRequest, record_send
from tests.support.campaigns import seed_audience
from tests.support.channels import SandboxControl, SeededChannel, WhatsApp
from tests.support.harness import RunningEngine, wait_until


def statuses(db: Engine, ids: list[int]) -> dict[int, tuple[str, int]]:
    with system_tx(db) as conn:
        found = conn.execute(
            text("SELECT id, status, send_attempts FROM messages WHERE id = ANY(:ids)"),
            {"ids": ids},
        ).all()
    return {r[0]: (r[1], r[2]) for r in found}


@pytest.mark.parametrize("provider", [WhatsApp()], ids=["whatsapp"])
def test_a_batch_is_sent_once_each_and_a_failed_send_is_retried_alone(
    provider: WhatsApp,
    flowdesk: RunningEngine,
    channel: SeededChannel,
    sandbox_control: SandboxControl,
    clean_db: Engine,
) -> None:
    tenant_id = channel.seeded.tenant_id
    contacts = seed_audience(clean_db, tenant_id=tenant_id, channel_id=channel.channel_id, count=8)
    with tenant_tx(clean_db, tenant_id) as conn:
        ids = [
            record_send(
                conn,
                tenant_id=tenant_id,
                ticket_id=conn.execute(
                    text("SELECT id FROM tickets WHERE contact_id = :c"), {"c": c}
                ).scalar_one(),
                request=SendRequest(body=f"Seu pedido {c} saiu para entrega."),
                user_id=None,
            ).message_id
            for c in contacts
        ]
    sandbox_control.fault(provider.sandbox_provider, "server_error", count=1)

    enqueue_sends(ids, batch=5)
    wait_until(lambda: {s for s, _ in statuses(clean_db, ids).values()} == {"sent"}, 20, "all sent")
    flowdesk.drain(wait_for_inbox=False)

    recorded = [
        r for r in sandbox_control.requests(provider.sandbox_provider) if r["method"] == "POST"
    ]
    assert [r["fault"] for r in recorded].count("server_error") == 1
    assert len(recorded) == len(ids) + 1  # one retry, for the one that hit the fault
    assert sorted(attempts for _, attempts in statuses(clean_db, ids).values()) == (
        [1] * (len(ids) - 1) + [2]
    )
    with system_tx(clean_db) as conn:
        stored = conn.execute(
            text("SELECT provider_message_id FROM messages WHERE id = ANY(:ids)"), {"ids": ids}
        ).scalars()
        announced = conn.execute(
            text("SELECT count(*), count(published_at) FROM outbox WHERE topic = 'message.status'")
        ).one()
        dead = conn.execute(text("SELECT count(*) FROM dead_letters")).scalar_one()
    assert sorted(stored) == sorted(r["message_id"] for r in recorded if r["status"] == 200)
    assert tuple(announced) == (len(ids), len(ids))  # published right after each batch's ack
    assert dead == 0
