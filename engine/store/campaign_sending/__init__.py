"""Campaign sending's data access: claims at pace, wind-down, reconciliation, live counters."""

from __future__ import annotations

from engine.store.campaign_sending.claims import (
    CampaignTicket,
    Recipient,
    SendingCampaign,
    get_campaign_ticket,
    get_due_campaigns,
    get_sending_campaign,
    get_tick_campaign_ids,
    link_identity,
    lock_recipients,
    set_next_send_at,
    settle_claims,
    try_lock_campaign,
)
from engine.store.campaign_sending.progress import (
    CountsChange,
    StatusMove,
    add_counts,
    count_key,
    deltas_of,
    follow_messages,
)
from engine.store.campaign_sending.state import (
    OpenRows,
    count_sends_since,
    get_open_rows,
    insert_note,
)
from engine.store.campaign_sending.winddown import (
    CANCELLED,
    StaleClaim,
    cancel_unsent,
    fail_orphans,
    get_stale_claims,
    skip_pending,
)

__all__ = [
    "CANCELLED",
    "CampaignTicket",
    "CountsChange",
    "OpenRows",
    "Recipient",
    "SendingCampaign",
    "StaleClaim",
    "StatusMove",
    "add_counts",
    "cancel_unsent",
    "count_key",
    "count_sends_since",
    "deltas_of",
    "fail_orphans",
    "follow_messages",
    "get_campaign_ticket",
    "get_due_campaigns",
    "get_open_rows",
    "get_sending_campaign",
    "get_stale_claims",
    "get_tick_campaign_ids",
    "insert_note",
    "link_identity",
    "lock_recipients",
    "set_next_send_at",
    "settle_claims",
    "skip_pending",
    "try_lock_campaign",
]
