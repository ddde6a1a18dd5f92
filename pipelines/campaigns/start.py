"""start: campaigns whose start time has come are frozen and set running, each exactly once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from engine.campaigns import CampaignStatus, InvalidTransitionError
from engine.db import system_tx, tenant_tx
from engine.errors import NotFoundError
from engine.store import campaign_sending as store
from engine.store.campaigns import ChannelDisconnectedError, start_campaign, transition

log = logging.getLogger(__name__)

START_BATCH = 100
START_REASON = "start time reached"


@dataclass
class StartOutcome:
    """Campaigns this call started or failed; outbox rows to publish after commit."""

    started: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)


def start_due_campaigns(db: Engine, *, limit: int = START_BATCH) -> StartOutcome:
    """Start every scheduled campaign whose start time has passed, however long ago (a
    scheduler that was down catches up on its first run).

    Each start is one transaction: status check under the row lock, audience frozen, status
    `running`. Two calls racing (a double fire, two schedulers) therefore start a campaign
    once: the second waits for the lock, then finds it running and leaves it. A campaign
    whose channel is disconnected becomes `failed` with that reason.
    """
    with system_tx(db) as conn:
        due = store.get_due_campaigns(conn, limit=limit)
    out = StartOutcome()
    for tenant_id, campaign_id in due:
        try:
            with tenant_tx(db, tenant_id) as conn:
                started = start_campaign(
                    conn, campaign_id, tenant_id=tenant_id, user_id=None, reason=START_REASON
                )
        except (InvalidTransitionError, NotFoundError):
            continue  # started (or changed, or deleted) by someone else meanwhile
        except ChannelDisconnectedError as exc:
            if _fail(db, tenant_id, campaign_id, str(exc), out):
                out.failed.append(campaign_id)
            continue
        out.started.append(campaign_id)
        out.outbox_ids.append(started.transition.outbox_id)
        log.info(
            "campaign started",
            extra={"campaign_id": campaign_id, "tenant_id": tenant_id, "contacts": started.frozen},
        )
    return out


def _fail(db: Engine, tenant_id: int, campaign_id: int, reason: str, out: StartOutcome) -> bool:
    try:
        with tenant_tx(db, tenant_id) as conn:
            moved = transition(
                conn,
                campaign_id,
                CampaignStatus.FAILED,
                tenant_id=tenant_id,
                user_id=None,
                reason=reason,
            )
    except (InvalidTransitionError, NotFoundError):
        return False
    out.outbox_ids.append(moved.outbox_id)
    log.info("campaign failed to start", extra={"campaign_id": campaign_id, "reason": reason})
    return True
