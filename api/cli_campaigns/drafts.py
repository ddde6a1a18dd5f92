"""`flowdesk campaign create` and `list`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from api.cli import CliError, Output
from api.cli_campaigns.common import as_cli_errors, cli_db, progress_bar, summary
from engine.campaigns import CampaignStatus
from engine.db import tenant_tx
from engine.store import campaigns as store


def _request(args: argparse.Namespace, variants: list[Any]) -> dict[str, Any]:
    audience = (
        {"tag_ids": args.tag}
        if args.tag
        else {"contact_ids": args.contact}
        if args.contact
        else {"csv_import_id": args.csv_import}
    )
    window = None
    if args.window:
        start, _, end = args.window.partition("-")
        window = {"start": start.strip(), "end": end.strip()}
        if args.days:
            window["days"] = [d.strip().lower() for d in args.days.split(",")]
    raw = {
        "name": args.name,
        "channel_id": args.channel,
        "audience": audience,
        "variants": variants,
        "start_at": args.start,
        "end_at": args.end,
        "send_window": window,
        "time_zone": args.time_zone,
        "delay_ms": args.delay,
        "rate_per_min": args.rate,
    }
    return {k: v for k, v in raw.items() if v is not None}


def _variants(args: argparse.Namespace) -> list[Any]:
    if args.variants_file is None:
        return [{"body": m} for m in args.message or []]
    try:
        loaded = json.loads(Path(args.variants_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"--variants-file: cannot read it as JSON ({exc})") from None
    if not isinstance(loaded, list):
        raise CliError('--variants-file: must be a JSON list like [{"body": "Hi {{name}}"}]')
    return loaded


def cmd_create(args: argparse.Namespace, settings: Any, out: Output) -> None:
    from api.campaigns.common import check_references
    from api.campaigns.models import CampaignIn

    if not (args.tag or args.contact or args.csv_import):
        raise CliError("say who receives it: --tag, --contact or --import")
    with as_cli_errors():
        body = CampaignIn.model_validate(_request(args, _variants(args)))
    db = cli_db(settings)
    with as_cli_errors(), tenant_tx(db, args.tenant) as conn:
        check_references(
            conn,
            tenant_id=args.tenant,
            channel_id=body.channel_id,
            audience=body.audience,
            variants=body.variants,
        )
        settings_ = store.CampaignSettings(
            **body.model_dump(exclude={"time_zone", "delay_ms"}),
            time_zone=body.time_zone or store.get_tenant_time_zone(conn, tenant_id=args.tenant),
            delay_ms=body.delay_ms or 0,
        )
        campaign_id = store.insert_campaign(
            conn, tenant_id=args.tenant, settings=settings_, created_by=None
        )
    out.emit(
        {"campaign_id": campaign_id, "status": "draft"},
        f"campaign {campaign_id} created (draft); start it with "
        f"`flowdesk campaign start {campaign_id}` or schedule it",
    )


def cmd_list(args: argparse.Namespace, settings: Any, out: Output) -> None:
    status = CampaignStatus(args.status) if args.status else None
    with tenant_tx(cli_db(settings), args.tenant) as conn:
        rows = store.list_campaigns(conn, tenant_id=args.tenant, status=status, limit=args.limit)
    lines = [f"{c.id:>6}  {c.status.value:<9}  {progress_bar(c.counts)}  {c.name}" for c in rows]
    out.emit([summary(c) for c in rows], "\n".join(lines) or "no campaigns")
