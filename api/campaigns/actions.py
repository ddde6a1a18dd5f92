"""Campaign status changes: schedule, start now, pause, resume, cancel.

They change the status (and log it); the sending engine obeys the status within seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from api.campaigns.common import campaign_errors, publish, router
from api.campaigns.models import CampaignView, ReasonIn, ScheduleIn
from api.framework import Call, NoQuery
from api.rbac import Permission
from engine.campaigns import CampaignStatus
from engine.store import campaigns as store

_PATH = "/api/v1/campaigns/{id}"
Change = Callable[[Connection], store.Transitioned]


async def _respond(call: Call[Any, NoQuery], change: Change) -> CampaignView:
    """Run `change` in the caller's transaction, answer with the campaign as it now is, and
    publish its `campaign.progress` event once committed."""

    def run(c: Connection) -> tuple[store.Campaign | None, int]:
        moved = change(c)
        return store.get_campaign(
            c, tenant_id=call.tenant_id, campaign_id=call.id()
        ), moved.outbox_id

    with campaign_errors():
        async with call.tx() as conn:
            campaign, outbox_id = await conn.run_sync(run)
    assert campaign is not None
    await publish(outbox_id)
    return CampaignView.of(campaign)


@router.post(
    _PATH + "/schedule",
    Permission.CAMPAIGNS_MANAGE,
    body=ScheduleIn,
    response=CampaignView,
    summary="Schedule a draft campaign",
)
async def schedule_campaign(call: Call[ScheduleIn, NoQuery]) -> CampaignView:
    """It starts at `start_at` (or its own start time), which must be in the future (422).
    409 when the channel is disconnected or the campaign is no draft."""
    now = datetime.now(UTC)
    return await _respond(
        call,
        lambda c: store.schedule_campaign(
            c,
            call.id(),
            tenant_id=call.tenant_id,
            user_id=call.principal.user_id,
            start_at=call.body.start_at,
            now=now,
        ),
    )


@router.post(
    _PATH + "/start",
    Permission.CAMPAIGNS_MANAGE,
    body=ReasonIn,
    response=CampaignView,
    summary="Start a campaign now",
)
async def start_campaign(call: Call[ReasonIn, NoQuery]) -> CampaignView:
    """A draft or scheduled campaign starts sending now (within its send window); its
    audience becomes a fixed list of contacts at this moment. 409 when the channel is
    disconnected, the end time has passed, or the campaign is paused (resume it) or over."""
    now = datetime.now(UTC)
    return await _respond(
        call,
        lambda c: store.start_now(
            c,
            call.id(),
            tenant_id=call.tenant_id,
            user_id=call.principal.user_id,
            reason=call.body.reason,
            now=now,
        ),
    )


@router.post(
    _PATH + "/resume",
    Permission.CAMPAIGNS_MANAGE,
    body=ReasonIn,
    response=CampaignView,
    summary="Resume a paused campaign",
)
async def resume_campaign(call: Call[ReasonIn, NoQuery]) -> CampaignView:
    """Back to sending, or back to scheduled if it was paused before its start time.
    409 when the channel is disconnected or the campaign is not paused."""
    now = datetime.now(UTC)
    return await _respond(
        call,
        lambda c: store.resume_campaign(
            c,
            call.id(),
            tenant_id=call.tenant_id,
            user_id=call.principal.user_id,
            reason=call.body.reason,
            now=now,
        ),
    )


def _move(call: Call[ReasonIn, NoQuery], to: CampaignStatus) -> Change:
    return lambda c: store.transition(
        c,
        call.id(),
        to,
        tenant_id=call.tenant_id,
        user_id=call.principal.user_id,
        reason=call.body.reason,
    )


@router.post(
    _PATH + "/pause",
    Permission.CAMPAIGNS_MANAGE,
    body=ReasonIn,
    response=CampaignView,
    summary="Pause a campaign",
)
async def pause_campaign(call: Call[ReasonIn, NoQuery]) -> CampaignView:
    """A running or scheduled campaign stops sending within seconds; resume continues it."""
    return await _respond(call, _move(call, CampaignStatus.PAUSED))


@router.post(
    _PATH + "/cancel",
    Permission.CAMPAIGNS_MANAGE,
    body=ReasonIn,
    response=CampaignView,
    summary="Cancel a campaign",
)
async def cancel_campaign(call: Call[ReasonIn, NoQuery]) -> CampaignView:
    """For good: contacts not yet sent to never will be. 409 once the campaign is over."""
    return await _respond(call, _move(call, CampaignStatus.CANCELLED))
