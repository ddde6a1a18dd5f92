"""Campaigns' data access (sync, write side and reports), shared by the API and the sender."""

from __future__ import annotations

from engine.store.campaigns.audience import SKIP_REASONS, freeze_audience
from engine.store.campaigns.core import (
    COUNT_KEYS,
    SETTING_COLUMNS,
    Campaign,
    CampaignSettings,
    UpdateOutcome,
    duplicate_campaign,
    get_campaign,
    get_campaign_tenant,
    get_channel_state,
    get_tenant_time_zone,
    insert_campaign,
    list_campaigns,
    lock_campaign,
    update_draft,
)
from engine.store.campaigns.counts import get_counts, increment_counts
from engine.store.campaigns.imports import (
    IMPORT_ACTION,
    PHONE_CHANNELS,
    ImportResult,
    get_import,
    insert_import,
)
from engine.store.campaigns.lifecycle import (
    PROGRESS_TOPIC,
    ChannelDisconnectedError,
    Started,
    Transitioned,
    insert_progress,
    start_campaign,
    transition,
)
from engine.store.campaigns.operations import resume_campaign, schedule_campaign, start_now
from engine.store.campaigns.refs import import_exists, known_contact_ids, known_tag_ids
from engine.store.campaigns.reports import (
    EXPORT_BATCH,
    CampaignReport,
    CauseCount,
    ExportRow,
    VariantCount,
    export_page,
    export_rows,
    report,
)

__all__ = [
    "COUNT_KEYS",
    "EXPORT_BATCH",
    "IMPORT_ACTION",
    "PHONE_CHANNELS",
    "PROGRESS_TOPIC",
    "SETTING_COLUMNS",
    "SKIP_REASONS",
    "Campaign",
    "CampaignReport",
    "CampaignSettings",
    "CauseCount",
    "ChannelDisconnectedError",
    "ExportRow",
    "ImportResult",
    "Started",
    "Transitioned",
    "UpdateOutcome",
    "VariantCount",
    "duplicate_campaign",
    "export_page",
    "export_rows",
    "freeze_audience",
    "get_campaign",
    "get_campaign_tenant",
    "get_channel_state",
    "get_counts",
    "get_import",
    "get_tenant_time_zone",
    "import_exists",
    "increment_counts",
    "insert_campaign",
    "insert_import",
    "insert_progress",
    "known_contact_ids",
    "known_tag_ids",
    "list_campaigns",
    "lock_campaign",
    "report",
    "resume_campaign",
    "schedule_campaign",
    "start_campaign",
    "start_now",
    "transition",
    "update_draft",
]
