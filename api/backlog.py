"""Ingest backpressure: how many more inbox rows this web process may store right now."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

REFRESH_S = 1.0


class BacklogFullError(Exception):
    """The inbox holds INGEST_MAX_BACKLOG unprocessed rows; the provider should retry later."""


class InboxBacklog:
    """An estimate of the inbox's pending rows, counted in the database at most once per
    `refresh_s` and advanced locally by every row this process reserves in between.

    The estimate errs high: rows in flight during a recount are counted twice until the next
    recount, and reserved rows that turn out to be duplicates are counted until then too. So
    within one web process the bound is never exceeded; several web processes may overshoot
    it by what the others store within one refresh.
    """

    def __init__(
        self,
        max_rows: int,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_rows = max_rows
        self._refresh_s = refresh_s
        self._clock = clock
        self._counted = 0  # pending rows at the last recount
        self._since = 0  # rows reserved since (or in flight at) the last recount
        self._open = 0  # rows reserved whose transaction has not ended
        self._counted_at: float | None = None
        self._lock = asyncio.Lock()

    async def admit(self, count_pending: Callable[[], Awaitable[int]], sizes: Sequence[int]) -> int:
        """How many of the requests (rows each, in order) fit under the bound; reserves their
        rows. `count_pending` counts the inbox's pending rows, when a recount is due. Call
        release() with the same total once the write has ended."""
        async with self._lock:
            now = self._clock()
            if self._counted_at is None or now - self._counted_at >= self._refresh_s:
                self._counted = await count_pending()
                self._since = self._open
                self._counted_at = now
            room = self.max_rows - self._counted - self._since
            admitted = taken = 0
            for size in sizes:
                if taken + size > room:
                    break
                admitted += 1
                taken += size
            self._since += taken
            self._open += taken
            return admitted

    def release(self, rows: int) -> None:
        """The transaction holding `rows` reserved rows has committed or failed."""
        self._open -= rows
