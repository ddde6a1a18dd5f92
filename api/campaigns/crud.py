"""Campaign drafts: create, change, list, read with live counts, duplicate."""

from __future__ import annotations

from sqlalchemy import Connection

from api.campaigns.common import check_references, check_templates, not_found, router
from api.campaigns.models import (
    CampaignIn,
    CampaignListQuery,
    CampaignPatch,
    CampaignView,
    pacing_error,
    times_error,
)
from api.errors import ApiError, invalid_field
from api.framework import Call, NoBody, NoQuery
from api.rbac import Permission
from api.resources.common import Page, changes_of, page_of
from engine.campaigns import CampaignStatus
from engine.store import campaigns as store

_PATH = "/api/v1/campaigns"


@router.post(
    _PATH,
    Permission.CAMPAIGNS_MANAGE,
    body=CampaignIn,
    response=CampaignView,
    status=201,
    summary="Create a campaign (draft)",
)
async def create_campaign(call: Call[CampaignIn, NoQuery]) -> CampaignView:
    """A draft: nothing is sent until it is scheduled or started. Unknown variables in a
    variant, or a channel, tag, contact or import that is not the tenant's, are a 422."""
    b = call.body

    def create(c: Connection) -> store.Campaign:
        check_references(
            c,
            tenant_id=call.tenant_id,
            channel_id=b.channel_id,
            audience=b.audience,
            variants=b.variants,
        )
        settings = store.CampaignSettings(
            **b.model_dump(exclude={"time_zone", "delay_ms"}),
            time_zone=b.time_zone or store.get_tenant_time_zone(c, tenant_id=call.tenant_id),
            delay_ms=b.delay_ms or 0,
        )
        campaign_id = store.insert_campaign(
            c, tenant_id=call.tenant_id, settings=settings, created_by=call.principal.user_id
        )
        found = store.get_campaign(c, tenant_id=call.tenant_id, campaign_id=campaign_id)
        assert found is not None
        return found

    async with call.tx() as conn:
        return CampaignView.of(await conn.run_sync(create))


@router.patch(
    _PATH + "/{id}",
    Permission.CAMPAIGNS_MANAGE,
    body=CampaignPatch,
    response=CampaignView,
    summary="Change a draft campaign",
)
async def update_campaign(call: Call[CampaignPatch, NoQuery]) -> CampaignView:
    """Only drafts change (409 otherwise: duplicate the campaign to send a changed copy)."""
    b = call.body
    changes = changes_of(b)
    if "delay_ms" in changes and changes["delay_ms"] is None:
        changes["delay_ms"] = 0  # no delay; the column is never null

    def update(c: Connection) -> store.Campaign:
        current = store.lock_campaign(c, tenant_id=call.tenant_id, campaign_id=call.id())
        if current is None:
            raise not_found()
        if current.status is not CampaignStatus.DRAFT:
            raise ApiError(
                409,
                "not_draft",
                f"Only a draft campaign can be changed; this one is {current.status.value}. "
                "Duplicate it to send a changed copy.",
            )
        check_references(c, tenant_id=call.tenant_id, channel_id=b.channel_id, audience=b.audience)
        # Validated again: the changes are plain values (variants as dicts), not models.
        merged = type(current).model_validate({**current.model_dump(), **changes})
        if b.variants is not None or b.channel_id is not None:
            check_templates(
                c, tenant_id=call.tenant_id, channel_id=merged.channel_id, variants=merged.variants
            )
        problem = times_error(merged.start_at, merged.end_at)
        if problem:
            raise invalid_field("end_at", problem)
        problem = pacing_error(merged.delay_ms, merged.rate_per_min)
        if problem:
            raise invalid_field("delay_ms", problem)
        dumped = {**b.model_dump(mode="json", include=set(changes)), "delay_ms": merged.delay_ms}
        store.update_draft(c, tenant_id=call.tenant_id, campaign_id=call.id(), changes=dumped)
        found = store.get_campaign(c, tenant_id=call.tenant_id, campaign_id=call.id())
        assert found is not None
        return found

    async with call.tx() as conn:
        return CampaignView.of(await conn.run_sync(update))


@router.get(
    _PATH,
    Permission.CAMPAIGNS_READ,
    query=CampaignListQuery,
    response=Page[CampaignView],
    summary="List campaigns",
)
async def list_campaigns(call: Call[NoBody, CampaignListQuery]) -> Page[CampaignView]:
    """Newest first; filter by `status`; `search` matches part of the name."""
    q = call.query
    async with call.tx() as conn:
        rows = await conn.run_sync(
            lambda c: store.list_campaigns(
                c,
                tenant_id=call.tenant_id,
                status=None if q.status is None else CampaignStatus(q.status),
                search=q.search,
                before_id=q.cursor,
                limit=q.limit + 1,
            )
        )
    return page_of(Page[CampaignView], [CampaignView.of(r) for r in rows], q.limit)


@router.get(
    _PATH + "/{id}",
    Permission.CAMPAIGNS_READ,
    response=CampaignView,
    summary="Get a campaign with its live counts",
)
async def get_campaign(call: Call[NoBody, NoQuery]) -> CampaignView:
    async with call.tx() as conn:
        found = await conn.run_sync(
            lambda c: store.get_campaign(c, tenant_id=call.tenant_id, campaign_id=call.id())
        )
    if found is None:
        raise not_found()
    return CampaignView.of(found)


@router.post(
    _PATH + "/{id}/duplicate",
    Permission.CAMPAIGNS_MANAGE,
    response=CampaignView,
    status=201,
    summary="Copy a campaign into a new draft",
)
async def duplicate_campaign(call: Call[NoBody, NoQuery]) -> CampaignView:
    """Same channel, audience, variants, window and pacing; no start or end time, no counts."""

    def duplicate(c: Connection) -> store.Campaign:
        new_id = store.duplicate_campaign(
            c, tenant_id=call.tenant_id, campaign_id=call.id(), created_by=call.principal.user_id
        )
        if new_id is None:
            raise not_found()
        found = store.get_campaign(c, tenant_id=call.tenant_id, campaign_id=new_id)
        assert found is not None
        return found

    async with call.tx() as conn:
        return CampaignView.of(await conn.run_sync(duplicate))
