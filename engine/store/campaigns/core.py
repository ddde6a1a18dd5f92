"""Campaign rows: create, change while draft, read one, list, duplicate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from engine.campaigns import Audience, CampaignStatus, SendWindow, Variant
from engine.queries.common import contains_pattern
from engine.store.campaigns.imports import attach_import
from engine.store.patch import patch_row

# The statuses campaign_contacts rows move through, as counted in campaigns.counts.
COUNT_KEYS = ("pending", "sent", "delivered", "read", "failed", "skipped")
COPY_SUFFIX = " (copy)"
MAX_NAME_CHARS = 200


class CampaignSettings(BaseModel):
    """What an operator sets on a campaign: everything but its status and bookkeeping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel_id: int
    name: str
    variants: list[Variant]
    audience: Audience
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    send_window: SendWindow | None = None
    time_zone: str
    delay_ms: Annotated[int, Field(ge=0)] = 0
    rate_per_min: Annotated[int, Field(ge=1)] | None = None


class Campaign(CampaignSettings):
    """A campaign row as stored. `counts` maps each COUNT_KEYS status to its live number of
    contacts; `variant` numbers elsewhere index `variants` from 0."""

    id: int
    tenant_id: int
    status: CampaignStatus
    counts: dict[str, int]
    failure_reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    next_send_at: datetime | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    "id, tenant_id, channel_id, name, status, variants, audience, start_at, end_at, send_window,"
    " coalesce(time_zone, 'UTC') AS time_zone, delay_ms, rate_per_min, counts, failure_reason,"
    " started_at, finished_at, next_send_at, created_by, created_at, updated_at"
)
# Columns a draft's PATCH may set, with the SQL type each bound value is cast to.
SETTING_COLUMNS = {
    "channel_id": "bigint",
    "name": "text",
    "variants": "jsonb",
    "audience": "jsonb",
    "start_at": "timestamptz",
    "end_at": "timestamptz",
    "send_window": "jsonb",
    "time_zone": "text",
    "delay_ms": "integer",
    "rate_per_min": "integer",
}
_JSON_COLUMNS = {"variants", "audience", "send_window"}


def _row(mapping: Mapping[Any, object]) -> Campaign:
    return Campaign.model_validate(dict(mapping))


def _bind(settings: Mapping[str, object]) -> dict[str, object]:
    """Setting values as bound parameters: models and lists of models to JSON text."""
    out: dict[str, object] = {}
    for name, value in settings.items():
        if name == "audience" and isinstance(value, dict):
            # Only the one audience key given is stored: SQL reads the others as absent.
            value = {k: v for k, v in value.items() if v is not None}
        if name in _JSON_COLUMNS:
            out[name] = None if value is None else json.dumps(value)
        else:
            out[name] = value
    return out


def get_tenant_time_zone(conn: Connection, *, tenant_id: int) -> str:
    """The tenant's IANA time zone, the default of its campaigns' send windows."""
    value = conn.execute(
        text("SELECT time_zone FROM tenants WHERE id = :t"), {"t": tenant_id}
    ).scalar_one_or_none()
    return str(value or "UTC")


def insert_campaign(
    conn: Connection, *, tenant_id: int, settings: CampaignSettings, created_by: int | None
) -> int:
    """A new `draft` campaign with no contacts yet (they are frozen when it starts)."""
    values = _bind(settings.model_dump(mode="json"))
    names = ", ".join(values)
    binds = ", ".join(f"CAST(:{n} AS {SETTING_COLUMNS[n]})" for n in values)
    sql = (
        f"INSERT INTO campaigns (tenant_id, created_by, {names}) "  # noqa: S608 - constant names
        f"VALUES (:t, :u, {binds}) RETURNING id"
    )
    campaign_id = int(
        conn.execute(text(sql), {"t": tenant_id, "u": created_by, **values}).scalar_one()
    )
    if settings.audience.csv_import_id is not None:
        attach_import(
            conn,
            tenant_id=tenant_id,
            import_id=settings.audience.csv_import_id,
            campaign_id=campaign_id,
        )
    return campaign_id


def get_campaign(conn: Connection, *, tenant_id: int, campaign_id: int) -> Campaign | None:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM campaigns WHERE tenant_id = :t AND id = :id"),  # noqa: S608
        {"t": tenant_id, "id": campaign_id},
    ).first()
    return None if row is None else _row(row._mapping)


def lock_campaign(conn: Connection, *, tenant_id: int, campaign_id: int) -> Campaign | None:
    """The campaign, its row locked until the transaction ends (status changes serialize)."""
    row = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM campaigns "  # noqa: S608
            "WHERE tenant_id = :t AND id = :id FOR UPDATE"
        ),
        {"t": tenant_id, "id": campaign_id},
    ).first()
    return None if row is None else _row(row._mapping)


def list_campaigns(
    conn: Connection,
    *,
    tenant_id: int,
    status: CampaignStatus | None = None,
    search: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Campaign]:
    """Newest first; `search` matches part of the name; page with `before_id`."""
    sql = f"SELECT {_COLUMNS} FROM campaigns WHERE tenant_id = :t"  # noqa: S608
    params: dict[str, object] = {"t": tenant_id, "limit": limit}
    if status is not None:
        sql += " AND status = :status"
        params["status"] = status.value
    if search is not None:
        sql += " AND name ILIKE :pattern"
        params["pattern"] = contains_pattern(search)
    if before_id is not None:
        sql += " AND id < :before"
        params["before"] = before_id
    rows = conn.execute(text(sql + " ORDER BY id DESC LIMIT :limit"), params).all()
    return [_row(r._mapping) for r in rows]


UpdateOutcome = Literal["updated", "not_found", "not_draft"]


def update_draft(
    conn: Connection, *, tenant_id: int, campaign_id: int, changes: Mapping[str, object]
) -> UpdateOutcome:
    """Set the named SETTING_COLUMNS (values as `model_dump(mode="json")` gives them), only
    while the campaign is a draft: a scheduled or running campaign's message is what it is."""
    current = lock_campaign(conn, tenant_id=tenant_id, campaign_id=campaign_id)
    if current is None:
        return "not_found"
    if current.status is not CampaignStatus.DRAFT:
        return "not_draft"
    patch_row(
        conn,
        table="campaigns",
        tenant_id=tenant_id,
        row_id=campaign_id,
        changes=_bind(changes),
        columns=SETTING_COLUMNS,
        touch=True,
    )
    audience = changes.get("audience")
    if isinstance(audience, dict) and isinstance(audience.get("csv_import_id"), int):
        attach_import(
            conn,
            tenant_id=tenant_id,
            import_id=audience["csv_import_id"],
            campaign_id=campaign_id,
        )
    return "updated"


def duplicate_campaign(
    conn: Connection, *, tenant_id: int, campaign_id: int, created_by: int | None
) -> int | None:
    """A new draft with the campaign's settings, named "… (copy)", without its start and end
    times (they are usually past); None when there is no such campaign."""
    value = conn.execute(
        text(
            "INSERT INTO campaigns (tenant_id, channel_id, name, variants, audience, send_window,"
            " time_zone, delay_ms, rate_per_min, created_by) "
            "SELECT tenant_id, channel_id, left(name, :keep) || :suffix, variants, audience,"
            " send_window, time_zone, delay_ms, rate_per_min, :u "
            "FROM campaigns WHERE tenant_id = :t AND id = :id RETURNING id"
        ),
        {
            "t": tenant_id,
            "id": campaign_id,
            "u": created_by,
            "keep": MAX_NAME_CHARS - len(COPY_SUFFIX),
            "suffix": COPY_SUFFIX,
        },
    ).scalar_one_or_none()
    return None if value is None else int(value)


def get_channel_state(
    conn: Connection, *, tenant_id: int, channel_id: int
) -> tuple[str, str] | None:
    """(type, status) of the tenant's channel; None when it has no such channel."""
    row = conn.execute(
        text("SELECT type, status FROM channels WHERE tenant_id = :t AND id = :id"),
        {"t": tenant_id, "id": channel_id},
    ).first()
    return None if row is None else (str(row[0]), str(row[1]))


def get_campaign_tenant(conn: Connection, campaign_id: int) -> int | None:
    """The tenant owning a campaign (system scope: the command line names campaigns by id)."""
    value = conn.execute(
        text("SELECT tenant_id FROM campaigns WHERE id = :id"), {"id": campaign_id}
    ).scalar_one_or_none()
    return None if value is None else int(value)
