"""Campaigns end to end: the scheduler starts and ticks, eight worker threads send to the
provider sandbox, statuses come back by webhook. What a user would notice: each contact gets
the message once, pause and cancel stop the sending within seconds, an outage fails nobody."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from actors import deps as worker_deps
from actors.campaigns import campaign_tick, start_due
from actors.maintenance import sweep
from actors.scheduler import Scheduler
from adapters.sandbox import Sandbox
from engine.campaigns import CampaignStatus, Variant
from engine.db import system_tx
from engine.events import ChannelType
from engine.ratelimit import limits_for
from engine.store.campaign_sending import get_sending_campaign
from pipelines.campaigns.claim import claim_and_record
from pipelines.campaigns.tick import tick_campaign
from tests.support.campaigns import (
    backdate,
    campaign,
    campaign_messages,
    create_campaign,
    recipient_rows,
    rows_by_status,
    seed_audience,
    set_status,
)
from tests.support.channels import SandboxControl, SeededChannel, WhatsApp, seed_channel
from tests.support.channels.meta import META_APP_SECRET
from tests.support.harness import RunningEngine, running_engine, wait_until

PAST = datetime.now(UTC) - timedelta(hours=1)
SENT = ("sent", "delivered", "read")


@pytest.fixture
def engine8(
    clean_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> Iterator[RunningEngine]:
    """The engine with eight worker threads, not yet consuming (each test starts it)."""
    with running_engine(
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        worker_threads=8,
        start_worker=False,
    ) as running:
        yield running
        if running.worker is not None:
            running.worker.stop()


@pytest.fixture
def whatsapp(clean_db: Engine, sandbox: Sandbox) -> SeededChannel:
    return seed_channel(clean_db, ChannelType.WHATSAPP, WhatsApp().setup(sandbox.http_url, 0))


@contextmanager
def scheduler_running() -> Iterator[Scheduler]:
    """The real scheduler (leader lock, 1-second campaign jobs) on a thread."""
    scheduler = Scheduler(worker_deps.current(), poll_s=0.2)
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    wait_until(lambda: scheduler.is_leader, 10, "scheduler leadership")
    try:
        yield scheduler
    finally:
        scheduler.stop()
        thread.join(10)


def delivered_sends(control: SandboxControl) -> list[dict[str, Any]]:
    """Message sends the provider accepted."""
    return [
        r
        for r in control.requests("whatsapp")
        if r["method"] == "POST" and r["status"] == 200 and r["message_id"]
    ]


def provider_calls(control: SandboxControl) -> int:
    return len([r for r in control.requests("whatsapp") if r["method"] == "POST"])


def start(engine: RunningEngine) -> None:
    assert engine.worker is not None
    engine.worker.start()


def test_each_contact_gets_exactly_one_message_through_double_fires_crashes_and_8_workers(
    clean_db: Engine,
    engine8: RunningEngine,
    whatsapp: SeededChannel,
    sandbox_control: SandboxControl,
) -> None:
    tenant_id = whatsapp.seeded.tenant_id
    sandbox_control.callbacks_to(
        engine8.base_url + whatsapp.path,
        provider="whatsapp",
        account=WhatsApp.phone_number_id,
        secret=META_APP_SECRET,
    )
    ids = seed_audience(clean_db, tenant_id=tenant_id, channel_id=whatsapp.channel_id, count=120)
    campaign_id = create_campaign(
        clean_db,
        tenant_id=tenant_id,
        channel_id=whatsapp.channel_id,
        contact_ids=ids,
        start_at=PAST,
    )
    deps = worker_deps.current()

    # The start job fired twice at once (a double fire, or two schedulers).
    started: list[list[int]] = []
    fire = [threading.Thread(target=lambda: started.append(start_due(deps))) for _ in range(2)]
    for t in fire:
        t.start()
    for t in fire:
        t.join()
    assert sorted(started) == [[], [campaign_id]]
    # After a contact opts out, the frozen audience still names them: skipped at claim time.
    with system_tx(clean_db) as conn:
        conn.execute(text("UPDATE contacts SET opted_out = true WHERE id = :id"), {"id": ids[-1]})

    # A worker killed mid-batch: rows claimed and messages recorded, never committed.
    with pytest.raises(RuntimeError), system_tx(clean_db) as conn:
        sending = get_sending_campaign(conn, campaign_id)
        assert sending is not None
        variants = [Variant.model_validate(v) for v in sending.variants]
        assert claim_and_record(conn, sending, variants, limit=30).message_ids
        raise RuntimeError("killed")
    # A worker killed after its tick committed, before it enqueued the sends.
    with system_tx(clean_db) as conn:
        later = conn.execute(text("SELECT now() + interval '300 ms'")).scalar_one()
    lost = tick_campaign(campaign_id, db=clean_db, limits=limits_for, now=later).message_ids
    assert lost

    start(engine8)
    with scheduler_running():
        for _ in range(3):  # duplicate ticks change nothing
            campaign_tick.send(campaign_id)
        wait_until(
            lambda: rows_by_status(clean_db, campaign_id).get("pending", 0) == 0, 30, "all claimed"
        )
        # The lost sends stay claimed (never blindly resent) until the sweep reconciles them.
        claimed = {
            r["message_id"]
            for r in recipient_rows(clean_db, campaign_id)
            if r["status"] == "claimed"
        }
        assert set(lost) <= claimed
        backdate(clean_db, campaign_id, seconds=3600)
        assert sweep(deps).campaign_rows_reconciled >= len(lost)
        wait_until(lambda: campaign(clean_db, campaign_id)["status"] == "finished", 30, "finished")

    sends = delivered_sends(sandbox_control)
    per_recipient = Counter(r["json"]["to"] for r in sends)
    assert len(per_recipient) == 119 and set(per_recipient.values()) == {1}
    assert provider_calls(sandbox_control) == 119
    messages = campaign_messages(clean_db, tenant_id)
    assert Counter(m["contact_id"] for m in messages) == Counter(ids[:-1])
    assert set(per_recipient) == {m["wa_id"] for m in messages}
    rows = recipient_rows(clean_db, campaign_id)
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert [(r["contact_id"], r["reason"]) for r in skipped] == [(ids[-1], "opted_out")]
    # The provider's delivered and read webhooks move each recipient on; counts follow live.
    wait_until(
        lambda: rows_by_status(clean_db, campaign_id) == {"read": 119, "skipped": 1},
        30,
        "read receipts",
    )
    counts = campaign(clean_db, campaign_id)["counts"]
    assert {k: v for k, v in counts.items() if v} == {"read": 119, "skipped": 1}


def test_pause_resume_and_cancel_take_effect_within_seconds(
    clean_db: Engine,
    engine8: RunningEngine,
    whatsapp: SeededChannel,
    sandbox_control: SandboxControl,
) -> None:
    tenant_id = whatsapp.seeded.tenant_id
    ids = seed_audience(clean_db, tenant_id=tenant_id, channel_id=whatsapp.channel_id, count=80)
    campaign_id = create_campaign(
        clean_db,
        tenant_id=tenant_id,
        channel_id=whatsapp.channel_id,
        contact_ids=ids,
        start_at=PAST,
        rate_per_min=300,  # five a second: 16 s for everyone
    )
    start(engine8)

    def quiet_after(change: CampaignStatus) -> int:
        """Apply `change`; return the provider's count once it stopped moving (≤ 2 s)."""
        set_status(clean_db, tenant_id, campaign_id, change)
        time.sleep(2.0)  # one tick plus the sends it had already enqueued
        settled = provider_calls(sandbox_control)
        time.sleep(2.0)
        assert provider_calls(sandbox_control) == settled, f"still sending after {change}"
        return settled

    with scheduler_running():
        wait_until(lambda: provider_calls(sandbox_control) >= 5, 15, "first sends")
        paused_at = quiet_after(CampaignStatus.PAUSED)
        assert paused_at < 80
        assert campaign(clean_db, campaign_id)["status"] == "paused"

        set_status(clean_db, tenant_id, campaign_id, CampaignStatus.RUNNING)
        wait_until(lambda: provider_calls(sandbox_control) > paused_at + 3, 5, "resumed sends")

        cancelled_at = quiet_after(CampaignStatus.CANCELLED)
        assert cancelled_at < 80
        wait_until(
            lambda: (
                set(rows_by_status(clean_db, campaign_id))
                <= {"sent", "delivered", "read", "skipped"}
            ),
            10,
            "every recipient settled",
        )
    rows = recipient_rows(clean_db, campaign_id)
    sent = [r for r in rows if r["status"] in SENT]
    assert len(sent) == cancelled_at == len(delivered_sends(sandbox_control))
    assert {r["reason"] for r in rows if r["status"] == "skipped"} == {"cancelled"}
    assert all(r["message_status"] in (None, "failed") for r in rows if r["status"] == "skipped")
    assert campaign(clean_db, campaign_id)["status"] == "cancelled"
    with system_tx(clean_db) as conn:
        pending = conn.execute(
            text(
                "SELECT count(*) FROM messages WHERE send_type = 'campaign' AND status = 'pending'"
            )
        ).scalar_one()
    assert pending == 0


def test_a_provider_outage_fails_nobody_and_everyone_gets_it_after_recovery(
    clean_db: Engine,
    engine8: RunningEngine,
    whatsapp: SeededChannel,
    sandbox: Sandbox,
    sandbox_control: SandboxControl,
) -> None:
    tenant_id = whatsapp.seeded.tenant_id
    ids = seed_audience(clean_db, tenant_id=tenant_id, channel_id=whatsapp.channel_id, count=40)
    sandbox_control.fault("whatsapp", "server_error", count=-1)
    campaign_id = create_campaign(
        clean_db,
        tenant_id=tenant_id,
        channel_id=whatsapp.channel_id,
        contact_ids=ids,
        start_at=PAST,
        rate_per_min=600,
    )
    start(engine8)
    with scheduler_running():
        wait_until(lambda: provider_calls(sandbox_control) >= 20, 20, "sends failing")
        time.sleep(3.0)
        during = rows_by_status(clean_db, campaign_id)
        assert "failed" not in during
        assert during.get("pending", 0) > 0  # the campaign stopped claiming new recipients
        assert campaign(clean_db, campaign_id)["status"] == "running"

        httpx.delete(f"{sandbox.http_url}/_sandbox/faults").raise_for_status()
        wait_until(lambda: campaign(clean_db, campaign_id)["status"] == "finished", 60, "finished")
    assert rows_by_status(clean_db, campaign_id) == {"sent": 40}
    per_recipient = Counter(r["json"]["to"] for r in delivered_sends(sandbox_control))
    assert len(per_recipient) == 40 and set(per_recipient.values()) == {1}


def test_contacts_outside_the_24_hour_window_get_the_whatsapp_template(
    clean_db: Engine,
    engine8: RunningEngine,
    whatsapp: SeededChannel,
    sandbox_control: SandboxControl,
) -> None:
    tenant_id = whatsapp.seeded.tenant_id
    recent, old = seed_audience(
        clean_db, tenant_id=tenant_id, channel_id=whatsapp.channel_id, count=2
    )
    with system_tx(clean_db) as conn:
        conn.execute(
            text(
                "UPDATE tickets SET last_inbound_at = now() - interval '3 days' "
                "WHERE contact_id = :c"
            ),
            {"c": old},
        )
    template = {
        "name": "order_update",
        "language": "pt_BR",
        "params": ["{{first_name|cliente}}", "{{protocol}}"],
    }
    variant = Variant.model_validate({"body": "Oi {{first_name}}!", "template": template})
    campaign_id = create_campaign(
        clean_db,
        tenant_id=tenant_id,
        channel_id=whatsapp.channel_id,
        contact_ids=[recent, old],
        start_at=PAST,
        variants=[variant],
    )
    start(engine8)
    with scheduler_running():
        wait_until(lambda: campaign(clean_db, campaign_id)["status"] == "finished", 30, "finished")
    assert rows_by_status(clean_db, campaign_id) == {"sent": 2}
    by_contact = {m["contact_id"]: m for m in campaign_messages(clean_db, tenant_id)}
    sent = {r["json"]["to"]: r["json"] for r in delivered_sends(sandbox_control)}
    assert sent[by_contact[recent]["wa_id"]]["text"]["body"] == "Oi Cliente!"
    with system_tx(clean_db) as conn:
        protocol = conn.execute(
            text(
                "SELECT t.protocol FROM messages m JOIN tickets t ON t.id = m.ticket_id "
                "WHERE m.id = :id"
            ),
            {"id": by_contact[old]["id"]},
        ).scalar_one()
    assert sent[by_contact[old]["wa_id"]]["template"] == {
        "name": "order_update",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Cliente"},
                    {"type": "text", "text": protocol},
                ],
            }
        ],
    }
