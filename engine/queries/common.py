"""Shared bases of the configuration read models: frozen views, rows with ids, LIKE patterns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Any aware timestamp, shown in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


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
