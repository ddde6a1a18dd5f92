"""Campaign sending stages on a real database: send windows, end time, finish, pause and
cancel, statuses flowing back, back-off on a failing provider, reconciliation after a crash."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.campaigns import CampaignStatus, SendWindow
from engine.db import system_tx, tenant_tx
from engine.store.outbound import mark_send_failed, mark_sent
from pipelines.campaigns import claim as claim_stage
from pipelines.campaigns import tick as tick_stage
from pipelines.campaigns.progress import follow_message_statuses
from pipelines.campaigns.reconcile import Reconciled, reconcile_claims
from tests.support.campaigns import (
    campaign,
    db_now,
    recipient_rows,
    rows_by_status,
    sent_all,
    set_status,
    sql,
    started,
    tick,
)
from tests.support.harness import Seeded, seed_whatsapp


@pytest.fixture
def acme(clean_db: Engine) -> Seeded:
    return seed_whatsapp(clean_db)


# --- windows, end, pause, cancel ----------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "closed_at", "opens_at"),
    [
        ("America/Sao_Paulo", "2025-03-14T11:59:00+00:00", "2025-03-14T12:00:00+00:00"),
        ("Asia/Tokyo", "2025-03-14T09:00:00+00:00", "2025-03-17T00:00:00+00:00"),
    ],
)
def test_outside_the_window_sending_waits_for_the_next_opening(
    clean_db: Engine, acme: Seeded, tz: str, closed_at: str, opens_at: str
) -> None:
    window = SendWindow(start=time(9), end=time(18), days=["mon", "tue", "wed", "thu", "fri"])
    campaign_id, _ = started(clean_db, acme, 3, send_window=window, time_zone=tz)
    sql(clean_db, "UPDATE campaigns SET next_send_at = NULL WHERE id = :id", id=campaign_id)
    closed = tick(clean_db, campaign_id, datetime.fromisoformat(closed_at))
    assert (closed.state, closed.message_ids) == ("window_closed", [])
    opens = datetime.fromisoformat(opens_at)
    assert campaign(clean_db, campaign_id)["next_send_at"] == opens
    assert len(tick(clean_db, campaign_id, opens).message_ids) == 1


def _reconcile(db: Engine) -> Reconciled:
    return reconcile_claims(db, older_than_s=60, retry_lost_after_s=3600)


def test_past_the_end_time_the_rest_is_skipped_and_it_finishes_after_the_sends(
    clean_db: Engine, acme: Seeded
) -> None:
    campaign_id, _ = started(clean_db, acme, 4, rate_per_min=60)
    tick(clean_db, campaign_id)
    sql(
        clean_db,
        "UPDATE campaigns SET end_at = now() - interval '1 s' WHERE id = :id",
        id=campaign_id,
    )
    ended = tick(clean_db, campaign_id)
    assert (ended.state, ended.skipped) == ("ended", 3)
    assert campaign(clean_db, campaign_id)["status"] == "running"  # one send still in flight
    sent_all(clean_db, campaign_id)
    assert tick(clean_db, campaign_id).state == "finished"
    row = campaign(clean_db, campaign_id)
    assert row["status"] == "finished"
    counts = row["counts"]
    assert (counts["pending"], counts["sent"], counts["skipped"]) == (0, 1, 3)
    reasons = {
        r["reason"] for r in recipient_rows(clean_db, campaign_id) if r["status"] == "skipped"
    }
    assert reasons == {"campaign_ended"}


def test_finished_only_when_every_send_is_done(clean_db: Engine, acme: Seeded) -> None:
    campaign_id, _ = started(clean_db, acme, 2)
    now = db_now(clean_db)
    assert len(tick(clean_db, campaign_id, now + timedelta(seconds=1)).message_ids) == 2
    draining = tick(clean_db, campaign_id, now + timedelta(seconds=2))
    assert draining.state == "draining"
    assert campaign(clean_db, campaign_id)["status"] == "running"
    sent_all(clean_db, campaign_id)
    assert tick(clean_db, campaign_id, now + timedelta(seconds=4)).state == "finished"
    assert campaign(clean_db, campaign_id)["counts"]["sent"] == 2


def test_a_pause_during_a_tick_rolls_its_claims_back(
    clean_db: Engine, acme: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id, _ = started(clean_db, acme, 5, rate_per_min=60)
    original = claim_stage.claim_and_record

    def claim_then_operator_pauses(*args: Any, **kwargs: Any) -> claim_stage.Claimed:
        done = original(*args, **kwargs)
        set_status(clean_db, acme.tenant_id, campaign_id, CampaignStatus.PAUSED)
        return done

    monkeypatch.setattr(tick_stage, "claim_and_record", claim_then_operator_pauses)
    outcome = tick(clean_db, campaign_id)
    assert (outcome.state, outcome.message_ids) == ("superseded", [])
    assert rows_by_status(clean_db, campaign_id) == {"pending": 5}
    monkeypatch.undo()
    assert tick(clean_db, campaign_id).state == "idle"  # paused: nothing claimed
    set_status(clean_db, acme.tenant_id, campaign_id, CampaignStatus.RUNNING)
    assert len(tick(clean_db, campaign_id).message_ids) == 1


def test_cancel_winds_down_everything_not_on_the_wire(clean_db: Engine, acme: Seeded) -> None:
    campaign_id, _ = started(clean_db, acme, 6)
    claimed = tick(clean_db, campaign_id, db_now(clean_db) + timedelta(seconds=1)).message_ids
    assert len(claimed) == 6
    in_flight, retrying, queued = claimed[0], claimed[1], claimed[2:]
    sql(
        clean_db,
        "UPDATE messages SET sending_at = now(), send_attempts = 1 WHERE id = :id",
        id=in_flight,
    )
    sql(clean_db, "UPDATE messages SET send_attempts = 2 WHERE id = :id", id=retrying)
    set_status(clean_db, acme.tenant_id, campaign_id, CampaignStatus.CANCELLED)
    with system_tx(clean_db) as conn:
        due = tick_stage.store.get_tick_campaign_ids(conn, limit=10)
    assert campaign_id in due

    outcome = tick(clean_db, campaign_id)
    assert outcome.state == "cancelled"
    rows = {r["message_id"]: r for r in recipient_rows(clean_db, campaign_id)}
    for message_id in [retrying, *queued]:
        row = rows[message_id]
        assert (row["status"], row["reason"], row["message_status"], row["message_error"]) == (
            "skipped",
            "cancelled",
            "failed",
            "cancelled",
        )
    assert (rows[in_flight]["status"], rows[in_flight]["message_status"]) == ("claimed", "pending")
    # The send on the wire completes and is recorded as it ends.
    with system_tx(clean_db) as conn:
        mark_sent(conn, message_id=in_flight, provider_message_id="wamid.wire")
        follow_message_statuses(conn, tenant_id=acme.tenant_id, message_ids=[in_flight])
    assert rows_by_status(clean_db, campaign_id) == {"sent": 1, "skipped": 5}
    assert campaign(clean_db, campaign_id)["counts"]["pending"] == 0
    with system_tx(clean_db) as conn:
        assert campaign_id not in tick_stage.store.get_tick_campaign_ids(conn, limit=10)


# --- statuses flow back; backoff; reconciliation -------------------------------------------


def test_statuses_move_rows_and_counts_forward_with_throttled_announcements(
    clean_db: Engine, acme: Seeded
) -> None:
    campaign_id, _ = started(clean_db, acme, 2)
    first, second = tick(clean_db, campaign_id, db_now(clean_db) + timedelta(seconds=1)).message_ids
    sql(clean_db, "UPDATE campaigns SET updated_at = now() - interval '1 minute'")
    announced: list[int] = []
    with system_tx(clean_db) as conn:
        mark_sent(conn, message_id=first, provider_message_id="wamid.1")
        announced += follow_message_statuses(conn, tenant_id=acme.tenant_id, message_ids=[first])
    with system_tx(clean_db) as conn:
        mark_send_failed(conn, message_id=second, code="131026", reason="undeliverable")
        announced += follow_message_statuses(conn, tenant_id=acme.tenant_id, message_ids=[second])
        # a repeat changes nothing
        announced += follow_message_statuses(conn, tenant_id=acme.tenant_id, message_ids=[second])
    assert len(announced) == 1  # the second change came within the same second
    with system_tx(clean_db) as conn:
        conn.execute(text("UPDATE messages SET status = 'read' WHERE id = :id"), {"id": first})
        follow_message_statuses(conn, tenant_id=acme.tenant_id, message_ids=[first])
    rows = {r["message_id"]: r for r in recipient_rows(clean_db, campaign_id)}
    assert (rows[first]["status"], rows[first]["sent_at"] is not None) == ("read", True)
    assert (rows[second]["status"], rows[second]["error_code"]) == ("failed", "131026")
    counts = campaign(clean_db, campaign_id)["counts"]
    assert {k: counts.get(k, 0) for k in ("pending", "sent", "read", "failed")} == {
        "pending": 0,
        "sent": 0,
        "read": 1,
        "failed": 1,
    }


def test_a_failing_provider_makes_the_campaign_back_off(clean_db: Engine, acme: Seeded) -> None:
    campaign_id, _ = started(clean_db, acme, 20, rate_per_min=600)
    claimed = tick(clean_db, campaign_id, db_now(clean_db) + timedelta(seconds=1)).message_ids
    sql(clean_db, "UPDATE messages SET send_attempts = 1 WHERE id = ANY(:ids)", ids=claimed[:5])
    now = db_now(clean_db) + timedelta(seconds=2)
    outcome = tick(clean_db, campaign_id, now)
    assert (outcome.state, outcome.message_ids) == ("backoff", [])
    assert campaign(clean_db, campaign_id)["next_send_at"] == now + timedelta(seconds=5)
    assert "failed" not in rows_by_status(clean_db, campaign_id)


def test_reconciliation_follows_the_message_and_resends_only_the_never_tried(
    clean_db: Engine, acme: Seeded
) -> None:
    campaign_id, _ = started(clean_db, acme, 4)
    sent, never_tried, retrying, deleted = tick(
        clean_db, campaign_id, db_now(clean_db) + timedelta(seconds=1)
    ).message_ids
    with system_tx(clean_db) as conn:  # acked, but the row missed it (a crash before the hook)
        mark_sent(conn, message_id=sent, provider_message_id="wamid.acked")
    sql(clean_db, "UPDATE messages SET send_attempts = 1 WHERE id = :id", id=retrying)
    sql(clean_db, "DELETE FROM messages WHERE id = :id", id=deleted)
    assert _reconcile(clean_db).resend_ids == []  # not stale yet
    sql(clean_db, "UPDATE campaign_contacts SET claimed_at = now() - interval '2 minutes'")

    outcome = _reconcile(clean_db)
    assert outcome.resend_ids == [never_tried]
    assert (outcome.followed, outcome.orphans) == (1, 1)
    rows = recipient_rows(clean_db, campaign_id)
    by_status = sorted((r["status"], r["error_code"]) for r in rows)
    assert by_status == [
        ("claimed", None),
        ("claimed", None),
        ("failed", "message_missing"),
        ("sent", None),
    ]
    counts = campaign(clean_db, campaign_id)["counts"]
    assert (counts["pending"], counts["sent"], counts["failed"]) == (2, 1, 1)
    # A retry whose broker message never came is offered again once long overdue.
    sql(
        clean_db,
        "UPDATE messages SET released_at = now() - interval '2 hours' WHERE id = :id",
        id=retrying,
    )
    assert retrying in _reconcile(clean_db).resend_ids


def test_a_tenant_sees_only_its_own_campaign_rows_move(clean_db: Engine, acme: Seeded) -> None:
    other = seed_whatsapp(clean_db, name="Other", phone_number_id="999000111")
    campaign_id, _ = started(clean_db, acme, 1)
    (message_id,) = tick(clean_db, campaign_id).message_ids
    with system_tx(clean_db) as conn:
        mark_sent(conn, message_id=message_id, provider_message_id="wamid.x")
    with tenant_tx(clean_db, other.tenant_id) as conn:
        assert (
            follow_message_statuses(conn, tenant_id=other.tenant_id, message_ids=[message_id]) == []
        )
    assert rows_by_status(clean_db, campaign_id) == {"claimed": 1}


def test_a_paused_campaign_past_its_end_time_finishes(clean_db: Engine, acme: Seeded) -> None:
    campaign_id, _ = started(clean_db, acme, 3, rate_per_min=60)
    tick(clean_db, campaign_id)
    sent_all(clean_db, campaign_id)
    set_status(clean_db, acme.tenant_id, campaign_id, CampaignStatus.PAUSED)
    sql(
        clean_db,
        "UPDATE campaigns SET end_at = now() - interval '1 s' WHERE id = :id",
        id=campaign_id,
    )
    with system_tx(clean_db) as conn:
        assert campaign_id in tick_stage.store.get_tick_campaign_ids(conn, limit=10)
    assert tick(clean_db, campaign_id).state == "finished"  # nothing was in flight
    assert campaign(clean_db, campaign_id)["status"] == "finished"
    assert rows_by_status(clean_db, campaign_id) == {"sent": 1, "skipped": 2}


def test_a_campaign_without_a_valid_variant_fails_instead_of_retrying(
    clean_db: Engine, acme: Seeded
) -> None:
    campaign_id, _ = started(clean_db, acme, 2)
    sql(clean_db, "UPDATE campaigns SET variants = '[]' WHERE id = :id", id=campaign_id)
    assert tick(clean_db, campaign_id).state == "failed"
    row = campaign(clean_db, campaign_id)
    assert (row["status"], row["failure_reason"]) == (
        "failed",
        "the campaign has no valid message variant",
    )
    assert rows_by_status(clean_db, campaign_id) == {"pending": 2}
