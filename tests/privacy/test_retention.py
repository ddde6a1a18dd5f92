"""Retention: a tenant's messages past `retention_days` are anonymised or deleted, in batches."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from actors.deps import current
from actors.privacy_jobs import run_retention
from engine.db import system_tx
from tests.privacy.webhooks import text_webhook
from tests.support.channels import Agent
from tests.support.harness import RunningEngine, Seeded, seed_whatsapp


@pytest.fixture
def traffic(clean_db: Engine, engine: RunningEngine) -> tuple[Seeded, Seeded]:
    """Tenant A: two messages from 40 days ago and one from today; tenant B: one old one."""
    a = seed_whatsapp(clean_db, name="Acme")
    b = seed_whatsapp(clean_db, name="Other", phone_number_id="999000111")
    for wamid in ("wamid.A1", "wamid.A2", "wamid.A3"):
        webhook = text_webhook("106540352242922", wamid, f"body of {wamid}")
        assert engine.post_whatsapp(a.channel_id, webhook).is_success
    webhook = text_webhook("999000111", "wamid.B1", "body of wamid.B1")
    assert engine.post_whatsapp(b.channel_id, webhook).is_success
    engine.drain()
    with system_tx(clean_db) as conn:
        conn.execute(
            text(
                "UPDATE messages SET created_at = now() - interval '40 days' "
                "WHERE provider_message_id IN ('wamid.A1', 'wamid.A2', 'wamid.B1')"
            )
        )
    return a, b


def _bodies(db: Engine) -> dict[str, str | None]:
    with system_tx(db) as conn:
        rows = conn.execute(text("SELECT provider_message_id, body FROM messages")).all()
    return {str(r[0]): r[1] for r in rows}


def _put(admin: Agent, key: str, value: object) -> int:
    response = admin.call("PUT", f"/api/v1/settings/{key}", json={"value": value})
    return int(response.status_code)


def test_retention_settings_are_validated(
    engine: RunningEngine, traffic: tuple[Seeded, Seeded]
) -> None:
    admin = Agent(engine, traffic[0])
    for bad in (0, 3651, "30", 1.5):
        assert _put(admin, "retention_days", bad) == 422, bad
    assert _put(admin, "retention_mode", "shred") == 422
    assert _put(admin, "retention_days", 3650) == 200
    assert _put(admin, "retention_days", None) == 200


def test_old_messages_are_anonymised_then_deleted_for_that_tenant_only(
    clean_db: Engine, engine: RunningEngine, traffic: tuple[Seeded, Seeded]
) -> None:
    admin = Agent(engine, traffic[0])
    assert run_retention(current()) == 0  # no tenant has a retention period yet
    assert _put(admin, "retention_days", 30) == 200

    assert run_retention(current(), batch=1) == 2  # batches of one, until none are left
    assert _bodies(clean_db) == {
        "wamid.A1": None,
        "wamid.A2": None,
        "wamid.A3": "body of wamid.A3",
        "wamid.B1": "body of wamid.B1",
    }
    assert run_retention(current()) == 0  # anonymised messages are not touched again

    assert _put(admin, "retention_mode", "delete") == 200
    assert run_retention(current()) == 2
    assert set(_bodies(clean_db)) == {"wamid.A3", "wamid.B1"}
    # The ticket is still there with its recent message.
    ticket = admin.only_ticket()
    assert [m["body"] for m in admin.messages(ticket["id"])] == ["body of wamid.A3"]
