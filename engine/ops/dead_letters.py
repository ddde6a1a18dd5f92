"""Dead letters as operators browse them: filtered pages, newest first, with a cursor."""

from __future__ import annotations

from sqlalchemy import Connection

from engine.events import Frozen
from engine.store.dead_letters import DeadLetter, DeadLetterFilter, list_dead_letters

PAGE_MAX = 500


class DeadLetterPage(Frozen):
    items: tuple[DeadLetter, ...]
    # Pass back as `cursor` for the next (older) page; None on the last page.
    next_cursor: int | None


def dead_letter_page(
    conn: Connection, f: DeadLetterFilter, *, limit: int, cursor: int | None = None
) -> DeadLetterPage:
    """One page of matching dead letters (system scope: they span tenants)."""
    limit = min(limit, PAGE_MAX)
    rows = list_dead_letters(conn, f, limit=limit + 1, before_id=cursor)
    items = tuple(rows[:limit])
    more = len(rows) > limit
    return DeadLetterPage(items=items, next_cursor=items[-1].id if more and items else None)
