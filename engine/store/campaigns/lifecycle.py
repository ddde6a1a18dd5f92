"""Campaign status changes (validated, logged, announced) and the live progress counters."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, text

from engine.campaigns import CampaignError, CampaignStatus, check_transition
from engine.campaigns.status import TERMINAL
from engine.errors import NotFoundError
from engine.store.campaigns.audience import freeze_audience
from engine.store.campaigns.core import get_channel_state, lock_campaign
from engine.store.outbox import insert_outbox

PROGRESS_TOPIC = "campaign.progress"


class ChannelDisconnectedError(CampaignError):
    """The campaign's channel is not connected, so the campaign cannot start."""


class Transitioned(BaseModel):
    """A status change made: from what, to what, and the `campaign.progress` outbox row to
    publish once the transaction commits."""

    model_config = ConfigDict(frozen=True)

    campaign_id: int
    previous: CampaignStatus
    status: CampaignStatus
    counts: dict[str, int]
    outbox_id: int


class Started(BaseModel):
    model_config = ConfigDict(frozen=True)

    transition: Transitioned
    frozen: int  # contacts added to campaign_contacts by this start (0 on a repeat)


_UPDATE_STATUS = text(
    """
    UPDATE campaigns SET
        status = :to,
        updated_at = now(),
        started_at = CASE WHEN :to = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
        -- "start now" on a campaign scheduled for later: it starts now, not at the old time
        start_at = CASE WHEN :to = 'running' AND (start_at IS NULL OR start_at > now())
                        THEN now() ELSE start_at END,
        finished_at = CASE WHEN :terminal THEN now() ELSE finished_at END,
        -- the sending engine looks for running campaigns by next_send_at: due at once
        next_send_at = CASE WHEN :to = 'running' THEN now() ELSE NULL END,
        failure_reason = CASE WHEN :to = 'failed' THEN :reason ELSE failure_reason END
    WHERE tenant_id = :t AND id = :id
    RETURNING counts
    """
)


def transition(
    conn: Connection,
    campaign_id: int,
    to: CampaignStatus,
    *,
    tenant_id: int,
    user_id: int | None,
    reason: str | None = None,
) -> Transitioned:
    """Move the campaign to `to` if the transition table allows it from its current status.

    Locks the row (SELECT … FOR UPDATE), so concurrent changes (an operator's pause, the
    engine finishing) apply one after the other and each is checked against the status the
    other left. Records a campaign_events row and a `campaign.progress` outbox event. Sets
    started_at on the first start, finished_at on finished/cancelled/failed, failure_reason
    (= `reason`) on failed. Raises NotFoundError (no such campaign in the tenant) or
    InvalidTransitionError (message says what is allowed instead); changes nothing then.
    """
    current = lock_campaign(conn, tenant_id=tenant_id, campaign_id=campaign_id)
    if current is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    check_transition(current.status, to)
    counts = conn.execute(
        _UPDATE_STATUS,
        {
            "t": tenant_id,
            "id": campaign_id,
            "to": to.value,
            "terminal": to in TERMINAL,
            "reason": reason,
        },
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO campaign_events (tenant_id, campaign_id, from_status, to_status, user_id,"
            " reason) VALUES (:t, :id, :from, :to, :u, :reason)"
        ),
        {
            "t": tenant_id,
            "id": campaign_id,
            "from": current.status.value,
            "to": to.value,
            "u": user_id,
            "reason": reason,
        },
    )
    outbox_id = insert_progress(
        conn, tenant_id=tenant_id, campaign_id=campaign_id, status=to, counts=counts
    )
    return Transitioned(
        campaign_id=campaign_id,
        previous=current.status,
        status=to,
        counts=counts,
        outbox_id=outbox_id,
    )


def insert_progress(
    conn: Connection,
    *,
    tenant_id: int,
    campaign_id: int,
    status: CampaignStatus,
    counts: Mapping[str, int],
) -> int:
    """A `campaign.progress` outbox event {campaign_id, status, counts}; returns its id."""
    return insert_outbox(
        conn,
        tenant_id=tenant_id,
        topic=PROGRESS_TOPIC,
        payload={"campaign_id": campaign_id, "status": status.value, "counts": dict(counts)},
    )


def start_campaign(
    conn: Connection,
    campaign_id: int,
    *,
    tenant_id: int,
    user_id: int | None,
    reason: str | None = None,
) -> Started:
    """Move the campaign to `running` (from draft, scheduled or paused), freezing its audience
    if it never ran before.

    The check comes first, so a campaign that may not start changes nothing. Raises
    NotFoundError, InvalidTransitionError, or ChannelDisconnectedError when its channel is
    not connected (the scheduler then moves it to `failed` with that reason; the API
    answers 409 and leaves it as it was).
    """
    current = lock_campaign(conn, tenant_id=tenant_id, campaign_id=campaign_id)
    if current is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    check_transition(current.status, CampaignStatus.RUNNING)
    channel = get_channel_state(conn, tenant_id=tenant_id, channel_id=current.channel_id)
    if channel is None or channel[1] != "connected":
        raise ChannelDisconnectedError("channel disconnected")
    # The audience is frozen once, at the first start: resuming must not add contacts
    # tagged since (ON CONFLICT would only stop duplicates).
    frozen = 0
    if current.started_at is None:
        frozen = freeze_audience(conn, campaign_id, tenant_id=tenant_id)
    moved = transition(
        conn,
        campaign_id,
        CampaignStatus.RUNNING,
        tenant_id=tenant_id,
        user_id=user_id,
        reason=reason,
    )
    return Started(transition=moved, frozen=frozen)
