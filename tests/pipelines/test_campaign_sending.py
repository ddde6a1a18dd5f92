"""Campaign sending stages on a real database: start, claims at pace, compliance at claim
time, concurrency. No worker: sends are observed as the pending messages a tick records."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from engine.campaigns import Variant
from engine.db import system_tx
from pipelines.campaigns import claim as claim_stage
from pipelines.campaigns import tick as tick_stage
from pipelines.campaigns.start import start_due_campaigns
from pipelines.campaigns.tick import TickOutcome
from tests.support.campaigns import (
    PAST,
    campaign,
    create_campaign,
    db_now,
    recipient_rows,
    rows_by_status,
    seed_audience,
    sql,
    started,
    tick,
)
from tests.support.harness import Seeded, seed_whatsapp


@pytest.fixture
def acme(clean_db: Engine) -> Seeded:
    return seed_whatsapp(clean_db)


# --- start ---------------------------------------------------------------------------------


def test_a_double_fired_start_starts_the_campaign_once(clean_db: Engine, acme: Seeded) -> None:
    ids = seed_audience(clean_db, tenant_id=acme.tenant_id, channel_id=acme.channel_id, count=30)
    campaign_id = create_campaign(
        clean_db,
        tenant_id=acme.tenant_id,
        channel_id=acme.channel_id,
        contact_ids=ids,
        start_at=PAST,  # missed while no scheduler ran: caught up on the next run
    )
    results: list[list[int]] = []
    barrier = threading.Barrier(4)

    def fire() -> None:
        barrier.wait()
        results.append(start_due_campaigns(clean_db).started)

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [[], [], [], [campaign_id]]
    assert campaign(clean_db, campaign_id)["status"] == "running"
    assert rows_by_status(clean_db, campaign_id) == {"pending": 30}
    with system_tx(clean_db) as conn:
        events = conn.execute(
            text("SELECT from_status, to_status FROM campaign_events WHERE campaign_id = :c"),
            {"c": campaign_id},
        ).all()
    assert [tuple(e) for e in events] == [("draft", "scheduled"), ("scheduled", "running")]


def test_a_campaign_due_later_is_not_started(clean_db: Engine, acme: Seeded) -> None:
    ids = seed_audience(clean_db, tenant_id=acme.tenant_id, channel_id=acme.channel_id, count=1)
    campaign_id = create_campaign(
        clean_db,
        tenant_id=acme.tenant_id,
        channel_id=acme.channel_id,
        contact_ids=ids,
        start_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    assert start_due_campaigns(clean_db).started == []
    assert campaign(clean_db, campaign_id)["status"] == "scheduled"


def test_a_campaign_whose_channel_is_gone_fails_with_the_reason(
    clean_db: Engine, acme: Seeded
) -> None:
    ids = seed_audience(clean_db, tenant_id=acme.tenant_id, channel_id=acme.channel_id, count=1)
    campaign_id = create_campaign(
        clean_db,
        tenant_id=acme.tenant_id,
        channel_id=acme.channel_id,
        contact_ids=ids,
        start_at=PAST,
    )
    sql(clean_db, "UPDATE channels SET status = 'disconnected' WHERE id = :id", id=acme.channel_id)
    outcome = start_due_campaigns(clean_db)
    assert (outcome.started, outcome.failed) == ([], [campaign_id])
    row = campaign(clean_db, campaign_id)
    assert (row["status"], row["failure_reason"]) == ("failed", "channel disconnected")


# --- claiming at pace ----------------------------------------------------------------------


def test_each_claim_records_the_rendered_message_in_the_same_transaction(
    clean_db: Engine, acme: Seeded
) -> None:
    campaign_id, _ = started(clean_db, acme, 3, rate_per_min=60)
    outcome = tick(clean_db, campaign_id)
    assert outcome.state == "sending"
    assert len(outcome.message_ids) == 1  # one a second: the first tick sends one
    rows = recipient_rows(clean_db, campaign_id)
    claimed = [r for r in rows if r["status"] == "claimed"]
    assert [r["message_id"] for r in claimed] == outcome.message_ids
    with system_tx(clean_db) as conn:
        message = conn.execute(
            text(
                "SELECT m.body, m.send_type, m.status, t.protocol, t.status FROM messages m "
                "JOIN tickets t ON t.id = m.ticket_id WHERE m.id = :id"
            ),
            {"id": outcome.message_ids[0]},
        ).one()
    body, send_type, status, protocol, ticket_status = message
    assert (send_type, status, ticket_status) == ("campaign", "pending", "open")
    assert body == f"Olá Cliente! Seu cupom vale até domingo. Protocolo {protocol}."


def test_a_crash_between_claim_and_record_leaves_nothing_claimed(
    clean_db: Engine, acme: Seeded
) -> None:
    """Claim and record share a transaction: a worker dying mid-batch (here: an exception after
    the rows were claimed and some messages recorded) rolls every claim back."""
    campaign_id, _ = started(clean_db, acme, 5)
    sending = tick_stage.store.get_sending_campaign
    with pytest.raises(RuntimeError), system_tx(clean_db) as conn:
        c = sending(conn, campaign_id)
        assert c is not None
        variants = [Variant.model_validate(v) for v in c.variants]
        done = claim_stage.claim_and_record(conn, c, variants, limit=5)
        assert len(done.message_ids) == 5
        raise RuntimeError("worker killed")
    assert rows_by_status(clean_db, campaign_id) == {"pending": 5}
    with system_tx(clean_db) as conn:
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 0
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM campaign_contacts WHERE status = 'claimed' "
                "AND message_id IS NULL"
            )
        ).scalar_one()
    assert orphans == 0


def test_the_pace_follows_rate_per_min(clean_db: Engine, acme: Seeded) -> None:
    campaign_id, _ = started(clean_db, acme, 10, rate_per_min=60)  # one a second
    t0 = db_now(clean_db)
    sql(clean_db, "UPDATE campaigns SET next_send_at = NULL WHERE id = :id", id=campaign_id)
    assert len(tick(clean_db, campaign_id, t0).message_ids) == 1
    assert campaign(clean_db, campaign_id)["next_send_at"] == t0 + timedelta(seconds=1)
    assert tick(clean_db, campaign_id, t0 + timedelta(milliseconds=900)).state == "not_due"
    assert len(tick(clean_db, campaign_id, t0 + timedelta(seconds=1)).message_ids) == 1
    # Late by a minute: one catch-up second's worth, not the minute's backlog.
    assert len(tick(clean_db, campaign_id, t0 + timedelta(seconds=61)).message_ids) == 2
    assert rows_by_status(clean_db, campaign_id) == {"claimed": 4, "pending": 6}


def test_concurrent_ticks_never_claim_a_recipient_twice(clean_db: Engine, acme: Seeded) -> None:
    campaign_id, _ = started(clean_db, acme, 40)
    outcomes: list[TickOutcome] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        barrier.wait()
        for _ in range(5):
            outcomes.append(tick(clean_db, campaign_id, db_now(clean_db) + timedelta(seconds=1)))

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [m for o in outcomes for m in o.message_ids]
    assert len(claimed) == len(set(claimed)) > 0
    rows = recipient_rows(clean_db, campaign_id)
    assert sorted(r["message_id"] for r in rows if r["message_id"]) == sorted(claimed)
    with system_tx(clean_db) as conn:
        per_contact = conn.execute(
            text("SELECT max(n) FROM (SELECT count(*) AS n FROM messages GROUP BY contact_id) x")
        ).scalar_one()
    assert per_contact == 1


# --- compliance at claim time -------------------------------------------------------------


def test_opt_outs_and_suppressions_after_the_freeze_are_skipped_at_claim(
    clean_db: Engine, acme: Seeded
) -> None:
    campaign_id, ids = started(clean_db, acme, 4)
    sql(clean_db, "UPDATE contacts SET opted_out = true WHERE id = :id", id=ids[0])
    sql(
        clean_db,
        "INSERT INTO suppression_list (tenant_id, address, reason) "
        "SELECT tenant_id, phone, 'asked by e-mail' FROM contacts WHERE id = :id",
        id=ids[1],
    )
    now = db_now(clean_db)
    outcome = tick(clean_db, campaign_id, now + timedelta(seconds=2))
    assert (len(outcome.message_ids), outcome.skipped) == (2, 2)
    reasons = {
        r["contact_id"]: (r["status"], r["reason"]) for r in recipient_rows(clean_db, campaign_id)
    }
    assert reasons[ids[0]] == ("skipped", "opted_out")
    assert reasons[ids[1]] == ("skipped", "suppressed")
    assert campaign(clean_db, campaign_id)["counts"] == {"pending": 2, "skipped": 2}
    with system_tx(clean_db) as conn:
        to_skipped = conn.execute(
            text("SELECT count(*) FROM messages WHERE contact_id = ANY(:ids)"), {"ids": ids[:2]}
        ).scalar_one()
    assert to_skipped == 0


def test_a_phone_only_contact_gets_a_whatsapp_address(clean_db: Engine, acme: Seeded) -> None:
    campaign_id, ids = started(clean_db, acme, 1)
    sql(clean_db, "DELETE FROM contact_identities WHERE contact_id = :id", id=ids[0])
    assert len(tick(clean_db, campaign_id).message_ids) == 1
    with system_tx(clean_db) as conn:
        wa_id = conn.execute(
            text("SELECT external_id FROM contact_identities WHERE contact_id = :id"),
            {"id": ids[0]},
        ).scalar_one()
    assert wa_id == "5511990000000"


def test_the_daily_quota_pauses_sending_until_the_tenants_next_day(
    clean_db: Engine, acme: Seeded
) -> None:
    sql(
        clean_db,
        "UPDATE tenants SET time_zone = 'America/Sao_Paulo', "
        "limits = '{\"daily_campaign_sends\": 3}' WHERE id = :id",
        id=acme.tenant_id,
    )
    campaign_id, _ = started(clean_db, acme, 5)
    now = db_now(clean_db)
    first = tick(clean_db, campaign_id, now + timedelta(seconds=1))
    assert len(first.message_ids) == 3
    second = tick(clean_db, campaign_id, now + timedelta(seconds=2))
    assert (second.state, second.message_ids) == ("quota_reached", [])
    row = campaign(clean_db, campaign_id)
    assert row["status"] == "running"  # waiting, not failed, not paused
    tomorrow = tick_stage.next_local_day(
        now + timedelta(seconds=2), tick_stage.zone("America/Sao_Paulo")
    )
    assert row["next_send_at"] == tomorrow
    assert rows_by_status(clean_db, campaign_id) == {"claimed": 3, "pending": 2}
    with system_tx(clean_db) as conn:
        reason = conn.execute(
            text(
                "SELECT reason FROM campaign_events WHERE campaign_id = :c "
                "AND from_status = 'running' AND to_status = 'running'"
            ),
            {"c": campaign_id},
        ).scalar_one()
    assert reason.startswith("daily campaign send quota of 3 reached")
