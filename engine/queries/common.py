"""Shared bases of the configuration read models: frozen views, rows with ids, LIKE patterns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from engine.queries.tickets import UtcDatetime

__all__ = ["IdView", "UtcDatetime", "View", "contains_pattern"]


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
