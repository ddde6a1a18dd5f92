"""The console's statistics page: one tenant's volume, times, FCR and backlog, with SVG charts."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.console.rendering import page
from api.console.session import guarded
from api.deps import get_deps
from api.ops_access import Operator
from engine.db import async_system_tx, async_tenant_tx
from engine.stats.period import GroupBy, PeriodError, resolve_period
from engine.stats.summary import Summary, format_duration, get_summary
from engine.stats.svg import Series, bar_chart

GROUPS: tuple[GroupBy, ...] = ("day", "channel", "queue", "agent")
_TENANT_NAME = text("SELECT name FROM tenants WHERE id = :id")


def _form(request: Request) -> tuple[dict[str, str], list[str]]:
    """The query string as the form shows it, and what is wrong with it, by field."""
    values = {k: request.query_params.get(k, "").strip() for k in ("tenant", "from", "to")}
    values["group_by"] = request.query_params.get("group_by", "day")
    errors = []
    if values["tenant"] and not (values["tenant"].isdigit() and 0 < int(values["tenant"]) < 2**63):
        errors.append("tenant: must be a tenant id (a positive whole number)")
    for name in ("from", "to"):
        if values[name] and _day(values[name]) is None:
            errors.append(f"{name}: must be a date like 2024-05-31")
    if values["group_by"] not in GROUPS:
        errors.append(f"group_by: must be one of {', '.join(GROUPS)}")
    return values, errors


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def charts(summary: Summary) -> dict[str, str]:
    volume = summary.volume
    queues = summary.backlog.queues
    return {
        "volume": bar_chart(
            f"Volume by {summary.group_by}",
            [r.label for r in volume],
            [
                Series("inbound", [r.inbound for r in volume]),
                Series("outbound", [r.outbound for r in volume]),
                Series("tickets created", [r.tickets_created for r in volume]),
            ],
        ),
        "backlog": bar_chart(
            "Backlog by queue",
            [q.label for q in queues],
            [
                Series("pending", [q.pending for q in queues]),
                Series("open", [q.open for q in queues]),
            ],
        ),
    }


async def stats_page(request: Request, operator: Operator) -> Response:
    values, errors = _form(request)

    def show(status: int = 200, errors: tuple[str, ...] = (), **found: Any) -> Response:
        return page(
            request, "stats.html", operator, section="stats", status=status, errors=errors,
            values=values, groups=GROUPS, duration=format_duration, **found,
        )  # fmt: skip

    if errors or not values["tenant"]:
        return show(400 if errors else 200, tuple(errors))
    tenant_id = int(values["tenant"])
    db = get_deps(request).db
    async with async_system_tx(db) as conn:
        name = (await conn.execute(_TENANT_NAME, {"id": tenant_id})).scalar_one_or_none()
    if name is None:
        return show(404, (f"tenant: no tenant {tenant_id}",))
    group_by: GroupBy = next(g for g in GROUPS if g == values["group_by"])
    async with async_tenant_tx(db, tenant_id) as conn:
        try:
            period = await resolve_period(conn, tenant_id, _day(values["from"]), _day(values["to"]))
        except PeriodError as exc:
            return show(400, (str(exc),))
        summary = await get_summary(conn, tenant_id, period, group_by)
    return show(tenant_name=name, period=period, summary=summary, charts=charts(summary))


routes = [Route("/ops/console/stats", guarded(stats_page), methods=["GET"])]
