"""Request and response models of the campaign endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.resources.common import (
    Clean,
    Frozen,
    ListQuery,
    LongName,
    NotNull,
    RowId,
    Strip,
)
from engine.campaigns import (
    Audience,
    CampaignStatus,
    RowError,
    SendWindow,
    TimeZoneName,
    Variants,
)
from engine.queries.common import IdView, Instant, UtcDatetime
from engine.store.campaigns import (
    COUNT_KEYS,
    Campaign,
    CampaignReport,
    CauseCount,
    ImportResult,
    ImportStatus,
)

MAX_DELAY_MS = 3_600_000  # an hour between two sends is already a drip, not a campaign
MAX_RATE_PER_MIN = 6_000

DelayMs = Annotated[int, Field(ge=0, le=MAX_DELAY_MS)]
RatePerMin = Annotated[int, Field(ge=1, le=MAX_RATE_PER_MIN)]


def pacing_error(delay_ms: int | None, rate_per_min: int | None) -> str | None:
    """Why a delay and a rate together make no sense, or None."""
    if delay_ms and rate_per_min is not None:
        return "give delay_ms or rate_per_min, not both (set the other to null)"
    return None


def times_error(start_at: datetime | None, end_at: datetime | None) -> str | None:
    if start_at is not None and end_at is not None and end_at <= start_at:
        return "end_at must be after start_at"
    return None


class CampaignIn(Frozen):
    """A new campaign, created as a draft.

    `time_zone` (default: the tenant's) is where `send_window` hours are read. Pacing is
    either `delay_ms` between two sends or `rate_per_min`; without either, the channel's own
    rate limit paces the campaign.
    """

    name: LongName
    channel_id: RowId
    audience: Audience
    variants: Variants
    start_at: Instant | None = None
    end_at: Instant | None = None
    send_window: SendWindow | None = None
    time_zone: TimeZoneName | None = None
    delay_ms: DelayMs | None = None
    rate_per_min: RatePerMin | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CampaignIn:
        problem = pacing_error(self.delay_ms, self.rate_per_min) or times_error(
            self.start_at, self.end_at
        )
        if problem:
            raise ValueError(problem)
        return self


class CampaignPatch(Frozen):
    """Only the fields sent change; null clears start_at, end_at, send_window and pacing."""

    name: Annotated[LongName | None, NotNull] = None
    channel_id: Annotated[RowId | None, NotNull] = None
    audience: Annotated[Audience | None, NotNull] = None
    variants: Annotated[Variants | None, NotNull] = None
    start_at: Instant | None = None
    end_at: Instant | None = None
    send_window: SendWindow | None = None
    time_zone: Annotated[TimeZoneName | None, NotNull] = None
    delay_ms: DelayMs | None = None
    rate_per_min: RatePerMin | None = None


class ScheduleIn(Frozen):
    """`start_at` replaces the campaign's start time; without it the one set on it is used."""

    start_at: Instant | None = None


# A Literal, not the enum: query parameter schemas are inlined (no $defs to point at).
StatusName = Literal["draft", "scheduled", "running", "paused", "finished", "cancelled", "failed"]


class CampaignListQuery(ListQuery):
    status: StatusName | None = None
    search: Annotated[str, Strip, Field(min_length=1, max_length=100), Clean] | None = None


class CampaignCounts(BaseModel):
    """Contacts per status, live; `total` is their sum."""

    model_config = ConfigDict(frozen=True)

    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    skipped: int = 0
    total: int = 0

    @classmethod
    def of(cls, counts: dict[str, int]) -> CampaignCounts:
        known = {k: int(counts.get(k, 0)) for k in COUNT_KEYS}
        return cls(**known, total=sum(known.values()))


class CampaignView(IdView):
    name: str
    status: CampaignStatus
    channel_id: int
    audience: Audience
    variants: Variants
    start_at: UtcDatetime | None
    end_at: UtcDatetime | None
    send_window: SendWindow | None
    time_zone: str
    delay_ms: int
    rate_per_min: int | None
    counts: CampaignCounts
    failure_reason: str | None
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    created_by: int | None
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, c: Campaign) -> CampaignView:
        return cls(
            **c.model_dump(
                include=set(cls.model_fields) - {"counts", "variants", "audience", "send_window"}
            ),
            variants=c.variants,
            audience=c.audience,
            send_window=c.send_window,
            counts=CampaignCounts.of(c.counts),
        )


class VariantCountsView(BaseModel):
    model_config = ConfigDict(frozen=True)

    variant: int  # numbered from 1
    counts: CampaignCounts


class ReportView(BaseModel):
    """Counts per status, failures by provider error code, skips by reason, and per variant."""

    model_config = ConfigDict(frozen=True)

    campaign_id: int
    status: CampaignStatus
    failure_reason: str | None
    counts: CampaignCounts
    failures: list[CauseCount]
    skipped: list[CauseCount]
    variants: list[VariantCountsView]

    @classmethod
    def of(cls, r: CampaignReport) -> ReportView:
        return cls(
            campaign_id=r.campaign_id,
            status=r.status,
            failure_reason=r.failure_reason,
            counts=CampaignCounts.of(r.counts),
            failures=r.failures,
            skipped=r.skipped,
            variants=[
                VariantCountsView(variant=v.variant, counts=CampaignCounts.of(v.counts))
                for v in r.variants
            ],
        )


class ImportQuery(Frozen):
    channel_id: RowId
    filename: LongName | None = Field(
        default=None, description="the file's name, kept with the import to recognise it"
    )


class ImportReadQuery(Frozen):
    errors_after_line: int = Field(
        default=0, ge=0, le=2**31 - 1, description="list bad rows after this line (paging)"
    )


class ImportJson(Frozen):
    """The JSON form of an import: the CSV file's text."""

    csv: str


class ImportView(BaseModel):
    """An import: valid rows kept as contacts; bad rows by line (1000 at a time: when
    `errors_truncated`, read on with `errors_after_line` = the last line listed)."""

    model_config = ConfigDict(frozen=True)

    id: int
    channel_id: int
    campaign_id: int | None = Field(description="the first campaign that targeted the import")
    filename: str | None
    created_by: int | None
    status: ImportStatus
    total_rows: int
    valid: int
    created: int
    error_count: int
    errors: list[RowError]
    errors_truncated: bool
    created_at: UtcDatetime

    @classmethod
    def of(cls, r: ImportResult) -> ImportView:
        return cls.model_validate(r.model_dump())


class ReasonIn(Frozen):
    """Why (optional): kept with the status change in the campaign's history."""

    reason: Annotated[str, Strip, Field(min_length=1, max_length=500), Clean] | None = None
