"""What an operator does to a campaign (API and CLI alike): schedule, start now, resume."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from engine.campaigns import (
    CampaignInputError,
    CampaignStateError,
    CampaignStatus,
    check_transition,
)
from engine.errors import NotFoundError
from engine.store.campaigns.core import Campaign, get_channel_state, lock_campaign, update_draft
from engine.store.campaigns.lifecycle import (
    ChannelDisconnectedError,
    Transitioned,
    start_campaign,
    transition,
)

S = CampaignStatus


def _locked(conn: Connection, tenant_id: int, campaign_id: int) -> Campaign:
    current = lock_campaign(conn, tenant_id=tenant_id, campaign_id=campaign_id)
    if current is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    return current


def _require_connected(conn: Connection, tenant_id: int, campaign: Campaign) -> None:
    state = get_channel_state(conn, tenant_id=tenant_id, channel_id=campaign.channel_id)
    if state is None or state[1] != "connected":
        raise ChannelDisconnectedError("channel disconnected")


def _require_not_ended(campaign: Campaign, now: datetime) -> None:
    if campaign.end_at is not None and campaign.end_at <= now:
        raise CampaignStateError(
            "The campaign's end time has passed; change it or cancel the campaign.", field="end_at"
        )


def schedule_campaign(
    conn: Connection,
    campaign_id: int,
    *,
    tenant_id: int,
    user_id: int | None,
    start_at: datetime | None,
    now: datetime,
) -> Transitioned:
    """Schedule a draft to start at `start_at` (replacing its own) or at its own start time.

    Raises NotFoundError; InvalidTransitionError (not a draft); CampaignInputError("start_at")
    when there is no start time or it is not after `now`; CampaignStateError("end_at") when
    the end time is not after the start; ChannelDisconnectedError. Changes nothing then.
    """
    current = _locked(conn, tenant_id, campaign_id)
    check_transition(current.status, S.SCHEDULED)
    when = start_at or current.start_at
    if when is None:
        raise CampaignInputError("start_at", "give the time to start at (or start it now)")
    if when <= now:
        raise CampaignInputError("start_at", "must be in the future (or start it now)")
    if current.end_at is not None and current.end_at <= when:
        raise CampaignStateError("The campaign's end time is not after its start.", field="end_at")
    _require_connected(conn, tenant_id, current)
    if start_at is not None:
        update_draft(
            conn,
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            changes={"start_at": start_at.isoformat()},
        )
    return transition(conn, campaign_id, S.SCHEDULED, tenant_id=tenant_id, user_id=user_id)


def start_now(
    conn: Connection,
    campaign_id: int,
    *,
    tenant_id: int,
    user_id: int | None,
    reason: str | None,
    now: datetime,
) -> Transitioned:
    """Start a draft or scheduled campaign at once (its audience is frozen now).

    Raises as start_campaign does, and CampaignStateError when it is paused (resume it) or
    its end time has passed.
    """
    current = _locked(conn, tenant_id, campaign_id)
    if current.status is S.PAUSED:
        raise CampaignStateError("The campaign is paused; resume it instead.")
    check_transition(current.status, S.RUNNING)
    _require_not_ended(current, now)
    started = start_campaign(conn, campaign_id, tenant_id=tenant_id, user_id=user_id, reason=reason)
    return started.transition


def resume_campaign(
    conn: Connection,
    campaign_id: int,
    *,
    tenant_id: int,
    user_id: int | None,
    reason: str | None,
    now: datetime,
) -> Transitioned:
    """Resume a paused campaign: back to `scheduled` if it was paused before ever starting
    and its start time is still ahead, else back to `running` (frozen on its first start).

    Raises NotFoundError; CampaignStateError (not paused, or its end time passed);
    ChannelDisconnectedError.
    """
    current = _locked(conn, tenant_id, campaign_id)
    if current.status is not S.PAUSED:
        raise CampaignStateError(
            f"Only a paused campaign can be resumed; this one is {current.status.value}."
        )
    _require_connected(conn, tenant_id, current)
    if current.started_at is None and current.start_at is not None and current.start_at > now:
        return transition(
            conn, campaign_id, S.SCHEDULED, tenant_id=tenant_id, user_id=user_id, reason=reason
        )
    _require_not_ended(current, now)
    return start_campaign(
        conn, campaign_id, tenant_id=tenant_id, user_id=user_id, reason=reason
    ).transition
