"""`flowdesk stats`: a tenant's volume, response times, first-contact resolution and backlog."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any

from api.cli import CliError, Output, positive_int
from config import Settings
from engine.stats.period import Period, PeriodError, resolve_period
from engine.stats.summary import Summary, format_duration, get_summary

Add = Callable[..., Any]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2024-05-31") from None


def add_stats_command(sub: Any, add: Add) -> None:
    """`flowdesk stats` under the main parser's subcommands; `add` is cli.py's helper."""
    p = add("stats", cmd_stats, "a tenant's statistics over a period of local days", sub)
    p.add_argument("--tenant", type=positive_int, required=True)
    p.add_argument("--from", dest="first", type=_day, help="first day (default: 29 days ago)")
    p.add_argument("--to", dest="last", type=_day, help="last day, inclusive (default: today)")
    p.add_argument("--group-by", choices=["day", "channel", "queue", "agent"], default="day")


def cmd_stats(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from api.cli import _db, _runtime
    from engine.db import system_tx
    from engine.store.tenants import tenant_exists

    db = _db(settings)
    try:
        with system_tx(db) as conn:
            if not tenant_exists(conn, args.tenant):
                raise CliError(f"--tenant: no tenant {args.tenant}")
    finally:
        db.dispose()
    period, summary = asyncio.run(_load(_runtime(settings).database_url, args))
    data = {
        "period": {"from": period.first, "to": period.last, "time_zone": period.time_zone},
        **summary.model_dump(mode="json"),
    }
    out.emit(data, render(period, summary))


async def _load(url: str, args: argparse.Namespace) -> tuple[Period, Summary]:
    from engine.db import async_tenant_tx, create_async_db_engine

    db = create_async_db_engine(url, pool_size=1)
    try:
        async with async_tenant_tx(db, args.tenant) as conn:
            try:
                period = await resolve_period(conn, args.tenant, args.first, args.last)
            except PeriodError as exc:
                raise CliError(f"--{exc.field}: {exc.message}") from None
            return period, await get_summary(conn, args.tenant, period, args.group_by)
    finally:
        await db.dispose()


def render(period: Period, s: Summary) -> str:
    """The summary as fixed-width tables for a terminal."""
    head = f"{s.group_by:<24}{'inbound':>10}{'outbound':>10}{'tickets':>10}"
    lines = [
        f"Tenant {s.tenant_id} · {period.first} .. {period.last} ({period.time_zone})",
        "",
        head,
        *(
            f"{r.label[:23]:<24}{r.inbound:>10}{r.outbound:>10}{r.tickets_created:>10}"
            for r in s.volume
        ),
        f"{'total':<24}{sum(r.inbound for r in s.volume):>10}"
        f"{sum(r.outbound for r in s.volume):>10}{sum(r.tickets_created for r in s.volume):>10}",
        "",
        f"{'':<24}{'tickets':>10}{'average':>10}{'median':>10}{'p90':>10}",
    ]
    for name, report in (("first response", s.first_response), ("resolution", s.resolution)):
        rows = [(name, report.overall)]
        if report.business_hours is not None:
            rows.append(("  in business hours", report.business_hours))
        lines += [
            f"{label:<24}{d.tickets:>10}{format_duration(d.average_s):>10}"
            f"{format_duration(d.p50_s):>10}{format_duration(d.p90_s):>10}"
            for label, d in rows
        ]
    fcr = s.first_contact.overall
    rate = "-" if fcr.rate is None else f"{fcr.rate:.0%}"
    b = s.backlog
    lines += [
        "",
        f"first-contact resolution: {rate} ({fcr.first_contact} of {fcr.closed} closed tickets)",
        f"backlog now: {b.pending} pending, {b.open} open, "
        f"oldest waiting {format_duration(b.oldest_age_s)}",
    ]
    return "\n".join(lines)
