"""A campaign's report (counts, failures by error code, skips by reason) and its CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy import Connection
from starlette.responses import Response, StreamingResponse

from api.campaigns.common import not_found, router
from api.campaigns.models import ReportView
from api.framework import Call, NoBody, NoQuery
from api.rbac import Permission
from engine.db import async_tenant_tx
from engine.store import campaigns as store

EXPORT_COLUMNS = (
    "contact_id",
    "contact_name",
    "phone",
    "variant",
    "status",
    "error_code",
    "reason",
    "sent_at",
)
# A spreadsheet runs a cell starting with these as a formula; contact names come from
# strangers' profiles, so such a cell is quoted as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@router.get(
    "/api/v1/campaigns/{id}/report",
    Permission.CAMPAIGNS_READ,
    response=ReportView,
    summary="Campaign report",
)
async def campaign_report(call: Call[NoBody, NoQuery]) -> ReportView:
    """Live counts per status, failed contacts grouped by provider error code, skipped ones
    by reason (opted_out, suppressed, no_address…), and counts per variant."""
    async with call.tx() as conn:
        found = await conn.run_sync(lambda c: store.report(c, call.id(), tenant_id=call.tenant_id))
    if found is None:
        raise not_found()
    return ReportView.of(found)


@router.get(
    "/api/v1/campaigns/{id}/export.csv",
    Permission.CAMPAIGNS_READ,
    summary="Export a campaign's contacts as CSV",
)
async def export_campaign(call: Call[NoBody, NoQuery]) -> Response:
    """text/csv, streamed: one line per contact with name, phone, variant (from 1), status,
    error code, skip reason and time sent."""
    campaign_id, tenant_id = call.id(), call.tenant_id
    async with call.tx() as conn:
        found = await conn.run_sync(
            lambda c: store.get_campaign(c, tenant_id=tenant_id, campaign_id=campaign_id)
        )
    if found is None:
        raise not_found()
    db = call.deps.db

    def page_after(after: int) -> Callable[[Connection], list[store.ExportRow]]:
        return lambda c: store.export_page(c, campaign_id, tenant_id=tenant_id, after_id=after)

    async def lines() -> AsyncIterator[str]:
        yield _csv_text([EXPORT_COLUMNS])
        after = 0
        while True:
            # One short transaction per page: a long export holds no connection in between.
            async with async_tenant_tx(db, tenant_id) as conn:
                page = await conn.run_sync(page_after(after))
            if page:
                yield _csv_text([export_cells(row) for row in page])
            if len(page) < store.EXPORT_BATCH:
                return
            after = page[-1].id

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'},
    )


def _text_cell(value: str | None) -> str:
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value or ""


def export_cells(row: store.ExportRow) -> list[str]:
    return [
        str(row.contact_id),
        _text_cell(row.contact_name),
        row.phone or "",
        "" if row.variant is None else str(row.variant),
        row.status,
        _text_cell(row.error_code),
        _text_cell(row.reason),
        "" if row.sent_at is None else row.sent_at.isoformat(),
    ]


def _csv_text(rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()
