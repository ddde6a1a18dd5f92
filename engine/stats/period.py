"""What every statistic is asked for: a period of local days, filters and a grouping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

GroupBy = Literal["channel", "queue", "agent", "day"]
MAX_PERIOD_DAYS = 366
# Days whose midnights any time zone can name (date arithmetic overflows near year 1 and 9999).
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(9998, 12, 31)


class StatRow(BaseModel):
    """The identity of one group: an id (channel, queue, agent; None: none) or a local day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int | None = None
    day: date | None = None
    label: str


class Durations(BaseModel):
    """Seconds; None when no ticket was measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tickets: int
    average_s: float | None
    p50_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class Period:
    """Local days `first`..`last` (inclusive) in the tenant's time zone, as UTC bounds."""

    first: date
    last: date
    time_zone: str

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=ZoneInfo(self.time_zone))

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return datetime.combine(self.last + timedelta(days=1), time(), ZoneInfo(self.time_zone))

    def params(self, tenant_id: int) -> dict[str, object]:
        return {"t": tenant_id, "start": self.start, "end": self.end, "tz": self.time_zone}


class PeriodError(ValueError):
    """A period that cannot be asked for; `field` names the parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


DEFAULT_PERIOD_DAYS = 30


def make_period(first: date | None, last: date | None, time_zone: str, *, today: date) -> Period:
    """The period from `first` to `last`; by default the 30 days up to and including today.

    Raises PeriodError when `last` is before `first`, the period exceeds MAX_PERIOD_DAYS, or
    a day lies outside EARLIEST_DAY..LATEST_DAY.
    """
    for field, day in (("from", first), ("to", last)):
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            raise PeriodError(field, f"must be between {EARLIEST_DAY} and {LATEST_DAY}")
    if first is not None and last is None and first > today:
        raise PeriodError("from", "must not be after today when to is left out")
    last = last or (
        today if first is None else min(today, first + timedelta(days=DEFAULT_PERIOD_DAYS - 1))
    )
    first = first or last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if last < first:
        raise PeriodError("to", "must not be before from")
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise PeriodError("to", f"the period may span at most {MAX_PERIOD_DAYS} days")
    return Period(first=first, last=last, time_zone=time_zone)


async def resolve_period(
    conn: AsyncConnection, tenant_id: int, first: date | None, last: date | None
) -> Period:
    """make_period in the tenant's time zone, "today" being the tenant's local date."""
    zone = await get_time_zone(conn, tenant_id)
    return make_period(first, last, zone, today=datetime.now(ZoneInfo(zone)).date())


@dataclass(frozen=True)
class Filters:
    """Optional narrowing to one channel and/or one queue (the ticket's current queue)."""

    channel_id: int | None = None
    queue_id: int | None = None

    def sql(self, alias: str = "t") -> str:
        """AND-clauses over a tickets (or messages, for the channel) alias; values are bound."""
        clauses = ""
        if self.channel_id is not None:
            clauses += f" AND {alias}.channel_id = :channel_id"
        if self.queue_id is not None:
            clauses += " AND t.queue_id = :queue_id"
        return clauses

    def params(self) -> dict[str, object]:
        return {"channel_id": self.channel_id, "queue_id": self.queue_id}


def ticket_key(group_by: GroupBy, day_column: str = "created_at") -> str:
    """The group key of a tickets row `t`; 0 stands for "none" so that keys join and sort."""
    return {
        "channel": "t.channel_id",
        "queue": "coalesce(t.queue_id, 0)",
        "agent": "coalesce(t.user_id, 0)",
        "day": f"(t.{day_column} AT TIME ZONE :tz)::date",
    }[group_by]


_NAMES: dict[GroupBy, str] = {"channel": "channels", "queue": "queues", "agent": "users"}
_NONE = {"channel": "No channel", "queue": "No queue", "agent": "Unassigned"}
_TIME_ZONE = text("SELECT time_zone FROM tenants WHERE id = :t")


async def get_time_zone(conn: AsyncConnection, tenant_id: int) -> str:
    """The tenant's IANA time zone (UTC for a tenant that is not visible)."""
    zone = (await conn.execute(_TIME_ZONE, {"t": tenant_id})).scalar_one_or_none()
    return str(zone) if zone else "UTC"


async def label_groups(
    conn: AsyncConnection, tenant_id: int, group_by: GroupBy, keys: list[object]
) -> list[StatRow]:
    """A StatRow per key, in order: names of channels, queues or agents, or the day itself."""
    if group_by == "day":
        return [StatRow(day=key, label=str(key)) for key in keys if isinstance(key, date)]
    ids = [int(str(key)) for key in keys]
    table = _NAMES[group_by]  # a constant chosen by enum
    sql = text(f"SELECT id, name FROM {table} WHERE tenant_id = :t AND id = ANY(:ids)")  # noqa: S608
    rows = (await conn.execute(sql, {"t": tenant_id, "ids": ids})).all()
    names: dict[int, str] = {int(i): str(name) for i, name in rows}
    return [
        StatRow(id=i or None, label=names.get(i, f"#{i}") if i else _NONE[group_by]) for i in ids
    ]
