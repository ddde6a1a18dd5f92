"""Campaign sending stages on a real database: start, tick at pace, compliance, wind-down,
statuses flowing back and reconciliation. No worker: sends are observed as pending messages."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.campaigns import CampaignStatus, SendWindow
from engine.db import system_tx, tenant_tx
from engine.ratelimit import limits_for
from engine.store.outbound import mark_send_failed, mark_sent
from pipelines.campaigns import claim as claim_stage
from pipelines.campaigns import tick as tick_stage
from pipelines.campaigns.progress import follow_message_statuses
from pipelines.campaigns.reconcile import reconcile_claims
from pipelines.campaigns.start import start_due_campaigns
from pipelines.campaigns.tick import TickOutcome, tick_campaign
from tests.support.campaigns import (
    campaign,
    create_campaign,
    recipient_rows,
    rows_by_status,
    seed_audience,
    set_status,
)
from tests.support.harness import Seeded, seed_whatsapp

PAST = datetime.now(UTC) - timedelta(hours=3)


@pytest.fixture
def acme(clean_db: Engine) -> Seeded:
    return seed_whatsapp(clean_db)


def started(db: Engine, seeded: Seeded, contacts: int, **settings: Any) -> tuple[int, list[int]]:
    """A campaign over `contacts` new contacts, started by the scheduler's job."""
    ids = seed_audience(
        db, tenant_id=seeded.tenant_id, channel_id=seeded.channel_id, count=contacts
    )
    campaign_id = create_campaign(
        db,
        tenant_id=seeded.tenant_id,
        channel_id=seeded.channel_id,
        contact_ids=ids,
        start_at=PAST,
        **settings,
    )
    assert start_due_campaigns(db).started == [campaign_id]
    return campaign_id, ids


def tick(db: Engine, campaign_id: int, now: datetime | None = None) -> TickOutcome:
    return tick_campaign(campaign_id, db=db, limits=limits_for, now=now)


def db_now(db: Engine) -> datetime:
    with system_tx(db) as conn:
        value: datetime = conn.execute(text("SELECT now()")).scalar_one()
    return value


def sql(db: Engine, statement: str, **params: object) -> None:
    with system_tx(db) as conn:
        conn.execute(text(statement), params)


def sent_all(db: Engine, campaign_id: int) -> None:
    """What the send worker's ack does for every claimed message."""
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT tenant_id, message_id FROM campaign_contacts "
                "WHERE campaign_id = :c AND status = 'claimed'"
            ),
            {"c": campaign_id},
        ).all()
        for tenant_id, message_id in rows:
            mark_sent(conn, message_id=message_id, provider_message_id=f"wamid.{message_id}")
            follow_message_statuses(conn, tenant_id=tenant_id, message_ids=[message_id])


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
        done = claim_stage.claim_and_record(conn, c, limit=5)
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
    campaign_id, _ = started(clean_db, acme, 5)
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
    assert reconcile_claims(clean_db, older_than_s=60).resend_ids == []  # not stale yet
    sql(clean_db, "UPDATE campaign_contacts SET claimed_at = now() - interval '2 minutes'")

    outcome = reconcile_claims(clean_db, older_than_s=60)
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
