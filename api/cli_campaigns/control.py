"""`flowdesk campaign status [--watch]`, `start`, `schedule`, `pause`, `resume`, `cancel`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from api.cli import Output
from api.cli_campaigns.common import (
    as_cli_errors,
    cli_db,
    read_campaign,
    status_line,
    summary,
    tenant_of,
)
from engine.campaigns import TERMINAL, CampaignStatus
from engine.db import tenant_tx
from engine.store import campaigns as store


def cmd_status(args: argparse.Namespace, settings: Any, out: Output) -> None:
    db = cli_db(settings)
    tenant_id = tenant_of(db, args.campaign_id)
    if not args.watch:
        c = read_campaign(db, tenant_id, args.campaign_id)
        out.emit(summary(c), f"{c.name}\n{status_line(c)}")
        return
    _watch(db, tenant_id, args.campaign_id, out, interval_s=args.interval)


def _watch(db: Engine, tenant_id: int, campaign_id: int, out: Output, *, interval_s: float) -> None:
    """Redraw the progress every `interval_s` until the campaign is over; Ctrl-C just stops
    watching (the campaign goes on). --json prints one JSON object per refresh."""
    redraw = sys.stdout.isatty() and not out.as_json
    try:
        while True:
            c = read_campaign(db, tenant_id, campaign_id)
            if out.as_json:
                print(json.dumps(summary(c), default=str), flush=True)
            elif redraw:
                print("\r\x1b[2K" + status_line(c), end="", flush=True)
            else:
                print(status_line(c), flush=True)
            if c.status in TERMINAL:
                break
            time.sleep(interval_s)
    except KeyboardInterrupt:
        if not out.as_json:
            print("\nstopped watching; the campaign goes on", flush=True)
        return
    if redraw:
        print(flush=True)


# status changes -----------------------------------------------------------------------------


def cmd_change(args: argparse.Namespace, settings: Any, out: Output) -> None:
    db = cli_db(settings)
    tenant_id = tenant_of(db, args.campaign_id)
    cid, now, reason = args.campaign_id, datetime.now(UTC), getattr(args, "reason", None)
    action = args.campaign_command
    with as_cli_errors(), tenant_tx(db, tenant_id) as conn:
        moved = _change(conn, action, cid, tenant_id, reason, now, getattr(args, "at", None))
    _publish(settings, moved.outbox_id)
    out.emit(
        {"campaign_id": cid, "status": moved.status.value, "previous": moved.previous.value},
        f"campaign {cid}: {moved.previous.value} → {moved.status.value}",
    )


def _change(
    conn: Connection,
    action: str,
    cid: int,
    tenant_id: int,
    reason: str | None,
    now: datetime,
    at: datetime | None,
) -> store.Transitioned:
    if action == "start":
        return store.start_now(conn, cid, tenant_id=tenant_id, user_id=None, reason=reason, now=now)
    if action == "resume":
        return store.resume_campaign(
            conn, cid, tenant_id=tenant_id, user_id=None, reason=reason, now=now
        )
    if action == "schedule":
        return store.schedule_campaign(
            conn, cid, tenant_id=tenant_id, user_id=None, start_at=at, now=now
        )
    to = CampaignStatus.PAUSED if action == "pause" else CampaignStatus.CANCELLED
    return store.transition(conn, cid, to, tenant_id=tenant_id, user_id=None, reason=reason)


def _publish(settings: Any, outbox_id: int) -> None:
    """Announce the change now; if the broker is unreachable the outbox sweeper will."""
    import dramatiq
    import redis

    from actors.deliver import publish_outbox
    from api.cli import _broker

    try:
        _broker(settings)
        publish_outbox.send([outbox_id])
    except (dramatiq.errors.DramatiqError, redis.RedisError, OSError):
        return  # the change is committed; the outbox sweeper publishes its event later
