"""Shared bases of the configuration read models: frozen views, rows with ids, LIKE patterns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC
        raise ValueError("is outside the range of dates this API handles") from None


def _in_range(value: datetime) -> datetime:
    utc = _to_utc(value)
    if not _EARLIEST <= utc < _LATEST:
        raise ValueError("must be between 1970 and 9998")
    return utc


# Any aware timestamp, shown in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
# A timestamp a client sends: aware, within 1970..9998 (PostgreSQL keeps years Python cannot
# read back), in UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]


class View(BaseModel):
    """An API view: immutable, exactly the fields the API returns."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class IdView(View):
    """A view of one row; lists page by its id."""

    id: int


def contains_pattern(term: str) -> str:
    """An ILIKE pattern matching `term` anywhere, its own % _ and \\ taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
