"""tick: one campaign's step — claim what is due at its pace, or wait, wind down or finish."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, text

from engine.campaigns import CampaignStatus, InvalidTransitionError, SendWindow, Variant, zone
from engine.db import set_tenant, system_tx
from engine.events import ChannelConnection
from engine.store import campaign_sending as store
from engine.store.campaigns import transition
from engine.store.outbox import insert_outbox
from pipelines.campaigns.claim import claim_and_record
from pipelines.campaigns.pace import due_slots, local_day_start, next_local_day, send_interval_ms
from pipelines.campaigns.progress import record_counts

log = logging.getLogger(__name__)

Limits = Callable[[ChannelConnection], tuple[float, int]]

TICK_BATCH = 1_000  # campaigns listed for a tick per scheduler round at most
MAX_CLAIM = 500  # recipients one tick claims at most
CLAIM_ROUNDS = 4  # claims per tick to make up for skipped recipients
MIN_IN_FLIGHT = 50
IN_FLIGHT_S = 10  # claimed-but-unsent recipients allowed: this many seconds of sends
# While this many of the campaign's messages wait for a retry (the provider is failing), the
# campaign claims nobody new and looks again after BACKOFF_S.
BACKOFF_AFTER_RETRYING = 5
BACKOFF_S = 5
FINISH_POLL_S = 1  # how often a campaign with sends in flight looks whether it is done
ENDED, CANCELLED = "campaign_ended", "cancelled"


@dataclass
class TickOutcome:
    """What a tick did; `message_ids` are to be sent and `outbox_ids` published after commit."""

    campaign_id: int
    state: str
    tenant_id: int | None = None
    message_ids: list[int] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    skipped: int = 0


class _Superseded(Exception):
    """The campaign left `running` while the tick worked: its claims must not commit."""


def campaigns_due(db: Engine, *, limit: int = TICK_BATCH) -> list[int]:
    """Campaigns a tick has work for now (running and due, ending, winding down)."""
    with system_tx(db) as conn:
        return store.get_tick_campaign_ids(conn, limit=limit)


def tick_campaign(
    campaign_id: int, *, db: Engine, limits: Limits, now: datetime | None = None
) -> TickOutcome:
    """Advance one campaign. Idempotent and safe to run concurrently: a second tick of the same
    campaign finds it locked and does nothing; a tick finds nothing due before next_send_at.

    `now` defaults to the database's clock (the one next_send_at is compared with when
    campaigns are listed). A status change committed while the tick ran (pause, cancel) rolls
    the tick back: nothing it claimed is sent.
    """
    try:
        with system_tx(db) as conn:
            if not store.try_lock_campaign(conn, campaign_id):
                return TickOutcome(campaign_id, "busy")
            campaign = store.get_sending_campaign(conn, campaign_id)
            if campaign is None:
                return TickOutcome(campaign_id, "gone")
            set_tenant(conn, campaign.tenant_id)
            at = now or conn.execute(text("SELECT now()")).scalar_one()
            outcome = _tick(conn, campaign, now=at, limits=limits)
            outcome.tenant_id = campaign.tenant_id
            return outcome
    except (_Superseded, InvalidTransitionError):
        # rolled back: an operator's pause or cancel won the race; the next tick sees it
        return TickOutcome(campaign_id, "superseded")


def _tick(
    conn: Connection, c: store.SendingCampaign, *, now: datetime, limits: Limits
) -> TickOutcome:
    if c.status == CampaignStatus.CANCELLED:
        return _wind_down(conn, c)
    ended = c.end_at is not None and c.end_at <= now
    if c.status == CampaignStatus.PAUSED and ended:
        return _end(conn, c)
    if c.status != CampaignStatus.RUNNING:
        return TickOutcome(c.id, "idle")
    if ended:
        return _end(conn, c)
    window = None if c.send_window is None else SendWindow.model_validate(c.send_window)
    if window is not None and not window.is_open(now, zone(c.time_zone)):
        return _wait(conn, c, window.next_open(now, zone(c.time_zone)), "window_closed")
    if c.next_send_at is not None and c.next_send_at > now:
        return TickOutcome(c.id, "not_due")
    rows = store.get_open_rows(conn, tenant_id=c.tenant_id, campaign_id=c.id)
    if not rows.pending:
        return _finish_or_poll(conn, c, rows, now)
    if rows.retrying >= BACKOFF_AFTER_RETRYING:
        log.warning("campaign backing off", extra={"campaign_id": c.id, "retrying": rows.retrying})
        return _wait(conn, c, now + timedelta(seconds=BACKOFF_S), "backoff")
    return _claim(conn, c, rows, now=now, limits=limits)


def _claim(
    conn: Connection,
    c: store.SendingCampaign,
    rows: store.OpenRows,
    *,
    now: datetime,
    limits: Limits,
) -> TickOutcome:
    channel = ChannelConnection(
        id=c.channel_id,
        tenant_id=c.tenant_id,
        type=c.channel_type,
        external_id=c.channel_external_id,
        config=c.channel_config,
    )
    interval_ms = send_interval_ms(
        rate_per_min=c.rate_per_min, delay_ms=c.delay_ms, channel_rate_per_s=limits(channel)[0]
    )
    slots = due_slots(now, c.next_send_at, interval_ms, limit=MAX_CLAIM)
    room = max(MIN_IN_FLIGHT, math.ceil(IN_FLIGHT_S * 1000 / interval_ms)) - rows.claimed
    limit = min(slots.count, max(room, 0))
    if c.daily_quota is not None and limit > 0:
        tz = zone(c.tenant_time_zone)
        used = store.count_sends_since(
            conn, tenant_id=c.tenant_id, since=local_day_start(now, tz), cap=c.daily_quota
        )
        if used >= c.daily_quota:
            return _quota_reached(conn, c, next_local_day(now, tz))
        limit = min(limit, c.daily_quota - used)
    variants = _variants(c)
    if variants is None:
        return _fail(conn, c, "the campaign has no valid message variant")
    out = TickOutcome(c.id, "sending")
    for _ in range(CLAIM_ROUNDS):
        want = limit - len(out.message_ids)
        if want <= 0:
            break
        batch = claim_and_record(conn, c, variants, limit=want, now=now)
        out.message_ids += batch.message_ids
        out.outbox_ids += batch.outbox_ids
        out.skipped += batch.skipped
        if batch.claimed < want:
            break  # nobody left to claim
    store.set_next_send_at(
        conn, tenant_id=c.tenant_id, campaign_id=c.id, at=slots.next_after(len(out.message_ids))
    )
    skipped = {"pending": -out.skipped, "skipped": out.skipped}
    out.outbox_ids += _counts(conn, c, skipped, require_running=True)
    return out


def _variants(c: store.SendingCampaign) -> list[Variant] | None:
    """The stored variants, or None when there is none or one is invalid (the API validates
    them; only a row written around it could hold such)."""
    try:
        variants = [Variant.model_validate(v) for v in c.variants]
    except ValidationError:
        return None
    return variants or None


def _fail(conn: Connection, c: store.SendingCampaign, reason: str) -> TickOutcome:
    moved = transition(
        conn, c.id, CampaignStatus.FAILED, tenant_id=c.tenant_id, user_id=None, reason=reason
    )
    log.error("campaign failed", extra={"campaign_id": c.id, "reason": reason})
    return TickOutcome(c.id, "failed", outbox_ids=[moved.outbox_id])


def _counts(
    conn: Connection,
    c: store.SendingCampaign,
    deltas: dict[str, int],
    *,
    require_running: bool = False,
    throttle_s: float | None = None,
) -> list[int]:
    """Counters and a throttled announcement, last in the tick: this locks the campaign row,
    so status changes wait only for the tick's commit. With `require_running`, a campaign
    paused or cancelled meanwhile rolls the whole tick back."""
    kwargs = {} if throttle_s is None else {"throttle_s": throttle_s}
    if require_running:
        status = conn.execute(
            text("SELECT status FROM campaigns WHERE tenant_id = :t AND id = :id FOR UPDATE"),
            {"t": c.tenant_id, "id": c.id},
        ).scalar_one_or_none()
        if status != CampaignStatus.RUNNING:
            raise _Superseded
    return record_counts(conn, tenant_id=c.tenant_id, campaign_id=c.id, deltas=deltas, **kwargs)


def _wait(conn: Connection, c: store.SendingCampaign, until: datetime, state: str) -> TickOutcome:
    if c.end_at is not None:
        until = min(until, c.end_at)  # the end is noticed on time whatever sending waits for
    store.set_next_send_at(conn, tenant_id=c.tenant_id, campaign_id=c.id, at=until)
    return TickOutcome(c.id, state)


def _quota_reached(conn: Connection, c: store.SendingCampaign, resume: datetime) -> TickOutcome:
    """Sending waits for the tenant's next day; recipients stay pending, and an event says why
    (once: the campaign is not ticked again before `resume`)."""
    store.insert_note(
        conn,
        tenant_id=c.tenant_id,
        campaign_id=c.id,
        status=c.status,
        reason=f"daily campaign send quota of {c.daily_quota} reached; sending resumes at "
        f"{resume.isoformat()}",
    )
    return _wait(conn, c, resume, "quota_reached")


def _end(conn: Connection, c: store.SendingCampaign) -> TickOutcome:
    """The end time passed: nobody else is claimed; finished once the sends in flight are done."""
    skipped = store.skip_pending(conn, tenant_id=c.tenant_id, campaign_id=c.id, reason=ENDED)
    out = TickOutcome(c.id, "ended", skipped=skipped)
    out.outbox_ids += _counts(conn, c, {"pending": -skipped, "skipped": skipped}, throttle_s=0)
    rows = store.get_open_rows(conn, tenant_id=c.tenant_id, campaign_id=c.id)
    if rows.claimed == 0:
        out.outbox_ids += _finish(conn, c, reason="end time reached")
        out.state = "finished"
    return out


def _wind_down(conn: Connection, c: store.SendingCampaign) -> TickOutcome:
    """Cancelled: rows not yet claimed are skipped, claimed messages no send holds are failed
    "cancelled". A send already on the wire completes and is recorded as it ends."""
    skipped = store.skip_pending(conn, tenant_id=c.tenant_id, campaign_id=c.id, reason=CANCELLED)
    cancelled = store.cancel_unsent(conn, tenant_id=c.tenant_id, campaign_id=c.id)
    out = TickOutcome(c.id, "cancelled", skipped=skipped + len(cancelled))
    for message_id, ticket_id in cancelled:
        out.outbox_ids.append(
            _message_failed(conn, c.tenant_id, message_id=message_id, ticket_id=ticket_id)
        )
    if out.skipped:
        deltas = {"pending": -out.skipped, "skipped": out.skipped}
        out.outbox_ids += _counts(conn, c, deltas, throttle_s=0)
    return out


def _message_failed(conn: Connection, tenant_id: int, *, message_id: int, ticket_id: int) -> int:
    return insert_outbox(
        conn,
        tenant_id=tenant_id,
        topic="message.status",
        payload={
            "message_id": message_id,
            "ticket_id": ticket_id,
            "status": "failed",
            "error_code": store.CANCELLED,
        },
    )


def _finish_or_poll(
    conn: Connection, c: store.SendingCampaign, rows: store.OpenRows, now: datetime
) -> TickOutcome:
    """Nobody left to claim: finished when no send is in flight, else look again shortly."""
    if rows.claimed == 0:
        return TickOutcome(c.id, "finished", outbox_ids=_finish(conn, c, reason="all sent"))
    out = _wait(conn, c, now + timedelta(seconds=FINISH_POLL_S), "draining")
    out.outbox_ids += _counts(conn, c, {})
    return out


def _finish(conn: Connection, c: store.SendingCampaign, *, reason: str) -> list[int]:
    moved = transition(
        conn, c.id, CampaignStatus.FINISHED, tenant_id=c.tenant_id, user_id=None, reason=reason
    )
    log.info("campaign finished", extra={"campaign_id": c.id, "tenant_id": c.tenant_id})
    return [moved.outbox_id]
