"""`flowdesk campaign …`: create, import lists, start and control campaigns, watch progress."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from api.cli import positive_int
from api.cli_campaigns.common import delay_ms
from api.cli_campaigns.control import cmd_change, cmd_status
from api.cli_campaigns.drafts import cmd_create, cmd_list
from api.cli_campaigns.lists import cmd_import, cmd_report
from engine.campaigns import CampaignStatus

Add = Callable[..., Any]


def add_campaign_commands(sub: Any, add: Add) -> None:
    """`flowdesk campaign …` under the main parser's subcommands; `add` is cli.py's helper."""
    campaign = sub.add_parser("campaign", help="campaigns").add_subparsers(
        dest="campaign_command", required=True
    )
    p = add("create", cmd_create, "create a draft campaign", campaign)
    p.add_argument("--tenant", type=positive_int, required=True)
    p.add_argument("--channel", type=positive_int, required=True)
    p.add_argument("--name", required=True)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--tag", type=positive_int, action="append", help="contacts with this tag")
    who.add_argument("--contact", type=positive_int, action="append", help="this contact")
    who.add_argument("--import", dest="csv_import", type=positive_int, help="a CSV import's id")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--message", action="append", help="a variant's text (up to 3)")
    what.add_argument(
        "--variants-file", help='JSON list: [{"body", "media_url", "media_type", "template"}]'
    )
    p.add_argument("--start", help="start time, ISO 8601 with offset")
    p.add_argument("--end", help="end time, ISO 8601 with offset")
    p.add_argument("--window", help="daily send window, local time, e.g. 08:00-20:00")
    p.add_argument("--days", help="window days, e.g. mon,tue,wed,thu,fri")
    p.add_argument("--time-zone", help="IANA zone of the window (default: the tenant's)")
    p.add_argument("--delay", type=delay_ms, help="pause between sends, e.g. 500ms, 5s")
    p.add_argument("--rate", type=positive_int, help="sends per minute")
    p = add("list", cmd_list, "list a tenant's campaigns", campaign)
    p.add_argument("--tenant", type=positive_int, required=True)
    p.add_argument("--status", choices=[s.value for s in CampaignStatus])
    p.add_argument("--limit", type=positive_int, default=50)
    p = add("status", cmd_status, "show a campaign's progress", campaign)
    p.add_argument("campaign_id", type=positive_int)
    p.add_argument("--watch", action="store_true", help="refresh until it is over (Ctrl-C)")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    for name, help in (
        ("start", "start a campaign now"),
        ("schedule", "schedule a draft campaign"),
        ("pause", "pause a campaign"),
        ("resume", "resume a paused campaign"),
        ("cancel", "cancel a campaign for good"),
    ):
        p = add(name, cmd_change, help, campaign)
        p.add_argument("campaign_id", type=positive_int)
        if name == "schedule":
            p.add_argument("--at", type=_iso_time, help="start time (default: the campaign's)")
        else:
            p.add_argument("--reason")
    p = add("import", cmd_import, "import contacts from a phone,name CSV file", campaign)
    p.add_argument("--channel", type=positive_int, required=True)
    p.add_argument("file")
    p = add("report", cmd_report, "counts, failures by code, skips by reason", campaign)
    p.add_argument("campaign_id", type=positive_int)
    p.add_argument("--csv", help="also write every contact's outcome to this CSV file")


def _iso_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a UTC offset, e.g. +00:00 or Z")
    return parsed
