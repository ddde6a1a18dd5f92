"""What a campaign did: live counts with failures and skips by cause, and rows to export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, text

from engine.campaigns import CampaignStatus

EXPORT_BATCH = 1_000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CauseCount(_Frozen):
    """How many contacts failed with one error code, or were skipped for one reason."""

    cause: str | None
    count: int


class VariantCount(_Frozen):
    variant: int  # numbered from 1, as operators count them
    counts: dict[str, int]


class CampaignReport(_Frozen):
    campaign_id: int
    status: CampaignStatus
    failure_reason: str | None
    counts: dict[str, int]  # live counters (campaigns.counts)
    failures: list[CauseCount]  # failed contacts by error_code, most frequent first
    skipped: list[CauseCount]  # skipped contacts by reason, most frequent first
    variants: list[VariantCount]  # per variant: contacts by status


class ExportRow(_Frozen):
    """One contact of the campaign, as the CSV export lists it."""

    id: int  # the campaign_contacts row: export pages continue after it
    contact_id: int
    contact_name: str | None
    phone: str | None
    variant: int | None  # numbered from 1; None when skipped before a variant was drawn
    status: str
    error_code: str | None
    reason: str | None
    sent_at: datetime | None


def _causes(
    conn: Connection, tenant_id: int, campaign_id: int, column: str, status: str
) -> list[CauseCount]:
    rows = conn.execute(
        text(
            f"SELECT {column}, count(*) FROM campaign_contacts "  # noqa: S608 - constant column
            "WHERE tenant_id = :t AND campaign_id = :id AND status = :status "
            f"GROUP BY {column} ORDER BY count(*) DESC, {column} NULLS LAST"
        ),
        {"t": tenant_id, "id": campaign_id, "status": status},
    ).all()
    return [CauseCount(cause=r[0], count=int(r[1])) for r in rows]


def report(conn: Connection, campaign_id: int, *, tenant_id: int) -> CampaignReport | None:
    """The campaign's report; None when the tenant has no such campaign."""
    head = conn.execute(
        text(
            "SELECT status, failure_reason, counts FROM campaigns WHERE tenant_id = :t AND id = :id"
        ),
        {"t": tenant_id, "id": campaign_id},
    ).first()
    if head is None:
        return None
    per_variant = conn.execute(
        text(
            "SELECT variant, status, count(*) FROM campaign_contacts "
            "WHERE tenant_id = :t AND campaign_id = :id AND variant IS NOT NULL "
            "GROUP BY variant, status ORDER BY variant, status"
        ),
        {"t": tenant_id, "id": campaign_id},
    ).all()
    variants: dict[int, dict[str, int]] = {}
    for variant, status, n in per_variant:
        variants.setdefault(int(variant) + 1, {})[str(status)] = int(n)
    return CampaignReport(
        campaign_id=campaign_id,
        status=CampaignStatus(head[0]),
        failure_reason=head[1],
        counts=dict(head[2] or {}),
        failures=_causes(conn, tenant_id, campaign_id, "error_code", "failed"),
        skipped=_causes(conn, tenant_id, campaign_id, "reason", "skipped"),
        variants=[VariantCount(variant=v, counts=c) for v, c in sorted(variants.items())],
    )


def export_page(
    conn: Connection,
    campaign_id: int,
    *,
    tenant_id: int,
    after_id: int = 0,
    limit: int = EXPORT_BATCH,
) -> list[ExportRow]:
    """Up to `limit` rows after row `after_id`, in row order (keyset: pages never overlap)."""
    rows = conn.execute(
        text(
            "SELECT cc.id, cc.contact_id, c.name AS contact_name, c.phone,"
            " cc.variant + 1 AS variant, cc.status, cc.error_code, cc.reason, cc.sent_at "
            "FROM campaign_contacts cc "
            "JOIN contacts c ON c.id = cc.contact_id AND c.tenant_id = :t "
            "WHERE cc.tenant_id = :t AND cc.campaign_id = :id AND cc.id > :after "
            "ORDER BY cc.id LIMIT :limit"
        ),
        {"t": tenant_id, "id": campaign_id, "after": after_id, "limit": limit},
    ).all()
    return [ExportRow.model_validate(dict(r._mapping)) for r in rows]


def export_rows(
    conn: Connection, campaign_id: int, *, tenant_id: int, batch: int = EXPORT_BATCH
) -> Iterator[ExportRow]:
    """Every row of the campaign, fetched `batch` at a time (memory stays flat)."""
    after = 0
    while True:
        page = export_page(conn, campaign_id, tenant_id=tenant_id, after_id=after, limit=batch)
        yield from page
        if len(page) < batch:
            return
        after = page[-1].id
